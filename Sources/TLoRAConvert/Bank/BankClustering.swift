import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// Splits a bank's members into clusters whose updates share subspaces, so that each cluster's
/// bases can be smaller than one set of bases for all ("Compress then Serve" clusters LoRAs the
/// same way: alternate between fitting bases per cluster and moving each adapter to the cluster
/// that reconstructs it best).
///
/// Subspace k-means: every cluster gets, per module, bases of a fixed rank (the single bank's ranks
/// divided by the number of clusters); a member's score for a cluster is the fraction of its
/// normalized update those bases capture, averaged over its modules; members move to their best
/// cluster until nothing moves (at most `iterations` rounds). Seeds are chosen farthest-first from
/// member 0, by the same score against a member's own subspaces. Deterministic.
enum BankClustering {
    static let iterations = 8

    static func assign(slots: [BankBuilder.Slot], sources: [BankBuilder.Source], clusters k: Int,
                       reference: [BankBuilder.Piece], options: BankBuilder.Options) throws -> [Int] {
        let m = sources.count
        // Ranks per module for each cluster: the one-cluster bank's divided among the clusters.
        var ranks = [(out: Int, in: Int)](repeating: (1, 1), count: slots.count)
        for p in reference {
            ranks[p.slot] = (max(1, (p.ranks.out + k - 1) / k), max(1, (p.ranks.in + k - 1) / k))
        }
        // Seeds: farthest-first by captured energy in each other's own column and row spaces.
        let own = try Parallel.map(count: slots.count) { i in
            try slots[i].entries.map { e -> (q: Matrix<Double>, p: Matrix<Double>, f: MemberFactors) in
                let f = try MemberFactors(e.module, in: sources[e.member].adapter)
                return (LA.qr(f.b).q, LA.qr(f.a.transposed()).q, f)
            }
        }
        func captured(_ j: Int, by c: Int) -> Double {
            var total = 0.0, count = 0
            for (i, slot) in slots.enumerated() {
                guard let a = slot.entries.firstIndex(where: { $0.member == j }) else { continue }
                count += 1
                guard let b = slot.entries.firstIndex(where: { $0.member == c }) else { continue }
                total += capture(own[i][a].f, outBasis: own[i][b].q, inBasis: own[i][b].p)
            }
            return count > 0 ? total / Double(count) : 0
        }
        var seeds = [0]
        var nearest = (0..<m).map { 1 - captured($0, by: 0) }
        while seeds.count < k {
            // Safe: m ≥ k ≥ 2 here, so there is a member left to pick.
            let next = (0..<m).filter { !seeds.contains($0) }.max { nearest[$0] < nearest[$1] }!
            seeds.append(next)
            for j in 0..<m { nearest[j] = min(nearest[j], 1 - captured(j, by: next)) }
        }
        var assignment = (0..<m).map { j -> Int in
            if let s = seeds.firstIndex(of: j) { return s }
            let scores = seeds.map { captured(j, by: $0) }
            var bestCluster = 0
            for c in 1..<k where scores[c] > scores[bestCluster] { bestCluster = c }
            return bestCluster
        }
        for _ in 0..<iterations {
            // Bases per cluster and module at the fixed ranks, from the cluster's members.
            let bases = try Parallel.map(count: slots.count) { i -> [Int: (Matrix<Double>, Matrix<Double>)] in
                var out: [Int: (Matrix<Double>, Matrix<Double>)] = [:]
                for c in 0..<k {
                    let members = own[i].indices.filter { assignment[slots[i].entries[$0].member] == c }
                    guard !members.isEmpty else { continue }
                    let fs = members.map { own[i][$0].f }
                    let u = ModeBasis(dimension: slots[i].outFeatures, widths: fs.map(\.triangleA.rows)) { fs[$0].outBlock }.basis
                    let v = ModeBasis(dimension: slots[i].inFeatures, widths: fs.map(\.triangleB.rows)) { fs[$0].inBlock }.basis
                    out[c] = (u.columns(0..<min(ranks[i].out, u.cols)), v.columns(0..<min(ranks[i].in, v.cols)))
                }
                return out
            }
            var scores = [[Double]](repeating: [Double](repeating: 0, count: k), count: m)
            var counts = [Int](repeating: 0, count: m)
            for (i, slot) in slots.enumerated() {
                for (a, e) in slot.entries.enumerated() {
                    counts[e.member] += 1
                    for (c, b) in bases[i] { scores[e.member][c] += capture(own[i][a].f, outBasis: b.0, inBasis: b.1) }
                }
            }
            let next = (0..<m).map { j -> Int in
                // The best score; ties go to the lower cluster.
                var bestCluster = 0
                for c in 1..<k where scores[j][c] > scores[j][bestCluster] { bestCluster = c }
                return bestCluster
            }
            if next == assignment { break }
            assignment = next
        }
        // Number clusters in order of first appearance, with no gaps.
        var renumber: [Int: Int] = [:]
        return assignment.map { c in
            if let r = renumber[c] { return r }
            renumber[c] = renumber.count
            return renumber.count - 1
        }
    }

    /// The fraction of `f`'s update that `Uᵀ X V` keeps: `‖Uᵀ B A V‖² · s² / ‖X‖²` (0 for a zero update).
    static func capture(_ f: MemberFactors, outBasis u: Matrix<Double>, inBasis v: Matrix<Double>) -> Double {
        guard f.norm > 0 else { return 0 }
        let core = f.core(outBasis: u, inBasis: v)
        let kept = ErrorMeasure.frobenius(core.storage) * abs(f.scale) / f.norm
        return kept * kept
    }
}
