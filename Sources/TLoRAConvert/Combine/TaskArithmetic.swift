/// The element-wise merges of task tensors that PEFT's `add_weighted_adapter` uses
/// (peft/utils/merge_utils.py, PEFT 0.21.2), in f64, with the same semantics:
///
/// - task arithmetic: `Σ w_i T_i`;
/// - magnitude prune: each `T_i` keeps its `⌊density · n⌋` largest |entries| (ties at the threshold:
///   the first in index order; torch.topk leaves that order unspecified), then task arithmetic;
/// - TIES: magnitude prune, then per entry the majority sign of the PRUNED, UNWEIGHTED tensors
///   (`total`: sign of `Σ T_i`, ≥ 0 counting as +; `frequency`: sign of `Σ sign(T_i)`), then the
///   weighted entries agreeing with it are summed and divided by how many agree (at least 1);
/// - DARE: each entry kept with probability `density` and divided by it (linear: then task
///   arithmetic; ties: then TIES's sign election and disjoint mean).
///
/// `density ≥ 1` prunes nothing (PEFT warns and keeps the tensor), as in PEFT.
public enum TaskArithmetic {
    /// `Σ w_i T_i`.
    public static func weightedSum(_ tensors: [[Double]], weights: [Double]) -> [Double] {
        precondition(tensors.count == weights.count && !tensors.isEmpty)
        var out = [Double](repeating: 0, count: tensors[0].count)
        for (t, w) in zip(tensors, weights) {
            precondition(t.count == out.count, "task tensors differ in size")
            for i in out.indices { out[i] += w * t[i] }
        }
        return out
    }

    /// Keeps the `⌊density · n⌋` entries of largest magnitude (the first ones in index order among
    /// equal magnitudes at the threshold); the rest become 0.
    public static func magnitudePrune(_ t: [Double], density: Double) -> [Double] {
        guard density < 1 else { return t }
        let n = t.count
        let k = Int((density * Double(n)).rounded(.towardZero))
        if k <= 0 { return [Double](repeating: 0, count: n) }
        if k >= n { return t }
        var magnitudes = t.map { abs($0) }
        let threshold = Selection.kthLargest(&magnitudes, k)
        var out = [Double](repeating: 0, count: n)
        var above = 0
        for v in t where abs(v) > threshold { above += 1 }
        var atThreshold = k - above
        for i in 0..<n {
            let m = abs(t[i])
            if m > threshold { out[i] = t[i] } else if m == threshold && atThreshold > 0 { out[i] = t[i]; atThreshold -= 1 }
        }
        return out
    }

    /// DARE's random drop: entries where `keep` is false become 0, the others are divided by `density`.
    public static func randomPrune(_ t: [Double], keep: [Bool], density: Double) -> [Double] {
        guard density < 1 else { return t }
        precondition(keep.count == t.count)
        var out = [Double](repeating: 0, count: t.count)
        for i in t.indices where keep[i] { out[i] = t[i] / density }
        return out
    }

    public enum MajoritySign: String, Sendable, CaseIterable {
        case total, frequency
    }

    /// TIES's sign election and disjoint mean over already pruned tensors.
    public static func disjointMean(_ pruned: [[Double]], weights: [Double], majority: MajoritySign) -> [Double] {
        precondition(pruned.count == weights.count && !pruned.isEmpty)
        let n = pruned[0].count
        var out = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var electorate = 0.0
            for t in pruned {
                switch majority {
                case .total: electorate += t[i]
                case .frequency: electorate += t[i] > 0 ? 1 : (t[i] < 0 ? -1 : 0)
                }
            }
            let sign: Double = electorate >= 0 ? 1 : -1
            var sum = 0.0, count = 0.0
            for (t, w) in zip(pruned, weights) where t[i] != 0 && (t[i] > 0) == (sign > 0) {
                sum += w * t[i]
                count += 1
            }
            out[i] = sum / max(count, 1)
        }
        return out
    }
}

/// Order statistics without a full sort.
enum Selection {
    /// The k-th largest value (1-based) of `values`, which is reordered (Hoare's quickselect with
    /// median-of-three pivots; O(n) on average).
    static func kthLargest(_ values: inout [Double], _ k: Int) -> Double {
        precondition(k >= 1 && k <= values.count)
        let target = k - 1  // index in descending order
        var lo = 0, hi = values.count - 1
        return values.withUnsafeMutableBufferPointer { v in
            while lo < hi {
                let mid = lo + (hi - lo) / 2
                // Median of three as pivot, for sorted or reversed inputs.
                let a = v[lo], b = v[mid], c = v[hi]
                let pivot = max(min(a, b), min(max(a, b), c))
                var i = lo, j = hi
                while i <= j {
                    while v[i] > pivot { i += 1 }
                    while v[j] < pivot { j -= 1 }
                    if i <= j { v.swapAt(i, j); i += 1; j -= 1 }
                }
                if target <= j { hi = j } else if target >= i { lo = i } else { return v[target] }
            }
            return v[target]
        }
    }
}
