import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// How `tlora combine` combines adapters: PEFT's `add_weighted_adapter` combination types.
public enum CombineMethod: String, Sendable, CaseIterable {
    /// `A = [w_i s_i A_i]`, `B = [B_i]`: exactly `Σ w_i s_i B_i A_i`, rank `Σ r_i`.
    case cat
    /// `Σ w_i s_i B_i A_i` truncated by SVD, from the stacked factors.
    case svd
    /// PEFT's factor-wise methods: A and B each merged from the adapters' A's and B's, with weights
    /// `±√|w_i s_i|` on A and `√|w_i s_i|` on B. Not the weighted sum of ΔW (cross terms).
    case linear, ties
    case dareLinear = "dare_linear", dareTies = "dare_ties"
    case magnitudePrune = "magnitude_prune"
    /// The same merges on each module's dense ΔW, then a truncated SVD.
    case tiesSVD = "ties_svd"
    case dareLinearSVD = "dare_linear_svd", dareTiesSVD = "dare_ties_svd"
    case magnitudePruneSVD = "magnitude_prune_svd"

    /// Merges A and B separately, as PEFT's non-SVD task-arithmetic methods do.
    public var isFactorWise: Bool { [.linear, .ties, .dareLinear, .dareTies, .magnitudePrune].contains(self) }

    /// Prunes (needs `--density`).
    public var needsDensity: Bool { ![.cat, .svd, .linear].contains(self) }

    /// The element-wise merge underneath.
    var merge: ElementwiseMerge {
        switch self {
        case .cat, .svd, .linear: return .sum
        case .ties, .tiesSVD: return .ties
        case .dareLinear, .dareLinearSVD: return .dareLinear
        case .dareTies, .dareTiesSVD: return .dareTies
        case .magnitudePrune, .magnitudePruneSVD: return .magnitude
        }
    }

    enum ElementwiseMerge { case sum, ties, dareLinear, dareTies, magnitude }
}

public struct CombineOptions: Sendable {
    public var method: CombineMethod
    /// One weight per adapter (nil: 1 each). Negative weights subtract.
    public var weights: [Double]?
    /// Fraction of entries kept by the pruning methods, in [0, 1].
    public var density: Double?
    public var majoritySign: TaskArithmetic.MajoritySign
    /// Rank or error of the SVD methods' result; nil: the largest input rank (PEFT's default).
    public var target: ConversionTarget?
    /// DARE's drops.
    public var mask: any DropMask
    /// Storage dtype of the result's factors.
    public var dtype: DType

    public init(method: CombineMethod, weights: [Double]? = nil, density: Double? = nil, majoritySign: TaskArithmetic.MajoritySign = .total,
                target: ConversionTarget? = nil, mask: any DropMask = SeededDropMask(seed: 0), dtype: DType = .f32) {
        self.method = method
        self.weights = weights
        self.density = density
        self.majoritySign = majoritySign
        self.target = target
        self.mask = mask
        self.dtype = dtype
    }
}

/// Combines several adapters into one LoRA adapter, module by module.
///
/// Every update kind tlora reads takes part through its exact factors (`LowRankForm`: TT, Tucker
/// slices, LoKr, LoHa, …). A module present in only some adapters combines those (as PEFT does).
/// Per module, the reported error is measured against what the method aims at: `Σ w_i s_i ΔW_i`
/// for cat, svd and the factor-wise methods (for which it is information, not a bound: they are not
/// that sum), the pruned and merged dense ΔW for the `_svd` methods.
public enum Combine {
    public static func combine(_ adapters: [Adapter], names: [String], options: CombineOptions) throws -> (Adapter, ConversionSummary) {
        guard adapters.count >= 1, adapters.count == names.count else { throw ConvertError(.invalidOptions, "combine needs adapters") }
        let weights = options.weights ?? Array(repeating: 1, count: adapters.count)
        guard weights.count == adapters.count else {
            throw ConvertError(.invalidOptions, "\(weights.count) weights for \(adapters.count) adapters")
        }
        guard weights.allSatisfy(\.isFinite) else { throw ConvertError(.invalidOptions, "weights must be finite numbers") }
        if options.method.needsDensity {
            guard let d = options.density, d >= 0, d <= 1 else {
                throw ConvertError(.invalidOptions, "--method \(options.method.rawValue) needs --density in [0, 1]")
            }
        }
        // Module names in order of first appearance.
        var order: [String] = []
        var seen = Set<String>()
        for a in adapters { for m in a.modules where seen.insert(m.name).inserted { order.append(m.name) } }
        let results = try Parallel.map(count: order.count) { i in
            try combineModule(order[i], adapters: adapters, names: names, weights: weights, options: options)
        }
        var out = Adapter()
        out.metadata.sourceFormat = "tlora"
        out.metadata.baseModel = adapters.compactMap { $0.metadata.baseModel }.first
        out.metadata.architecture = adapters.compactMap { $0.metadata.architecture }.first
        out.metadata["conversion"] = "combine --method \(options.method.rawValue)"
        out.modules = results.map(\.0)
        var replacedBy: [String: String] = [:]
        for (a, name) in zip(adapters, names) {
            for r in a.replacedTensors {
                if let other = replacedBy[r.target] {
                    throw ConvertError(.conflictingUpdates, "\(name): replaces \(r.target), which \(other) replaces too; whole replacements cannot be combined")
                }
                replacedBy[r.target] = name
                out.replacedTensors.append(r)
            }
        }
        return (out, ConversionSummary(lines: results.map(\.1)))
    }

    typealias Member = (index: Int, module: AdapterModule, form: LowRankForm, weight: Double)

    static func combineModule(_ name: String, adapters: [Adapter], names: [String], weights: [Double], options: CombineOptions)
        throws -> (AdapterModule, ConversionSummary.Line) {
        var members: [Member] = []
        for (i, a) in adapters.enumerated() {
            guard let m = a.module(named: name) else { continue }
            if m.doraMagnitude != nil {
                throw ConvertError(.notSupported, "\(names[i]): module \(name) is DoRA; its magnitude renormalization does not combine linearly")
            }
            members.append((i, m, try LowRankForm.orDense(m, in: a), weights[i]))
        }
        let first = members[0].module  // safe: the name came from some adapter
        for m in members.dropFirst() {
            let x = m.module
            guard x.outFeatures == first.outFeatures, x.inFeatures == first.inFeatures, x.layout == first.layout,
                  x.kind == first.kind, x.kernel == first.kernel else {
                throw ConvertError(.shapeMismatch, "\(names[m.index]): module \(name) is \(x.outFeatures)×\(x.inFeatures) (\(x.layout.rawValue)) "
                    + "but \(first.outFeatures)×\(first.inFeatures) (\(first.layout.rawValue)) in \(names[members[0].index]); adapters of different models do not combine")
            }
        }
        // The weighted sum Σ w_i s_i B_i A_i as stacked factors: the reference of cat, svd and the
        // factor-wise methods.
        let stacked = LowRankForm(
            b: concatenate(members.map { m in scaled(m.form.b, by: m.weight * m.module.scale) }, horizontally: true, rows: first.outFeatures),
            a: concatenate(members.map(\.form.a), horizontally: false, rows: 0))
        let sourceParameters = members.reduce(0) { $0 + $1.form.b.storage.count + $1.form.a.storage.count }
        let method = options.method
        var result: LowRankForm
        var denseReference: Matrix<Double>? = nil
        var bound: Double? = nil
        var note: String
        switch method {
        case .cat:
            result = LowRankForm(b: concatenate(members.map(\.form.b), horizontally: true, rows: first.outFeatures),
                                 a: concatenate(members.map { m in scaled(m.form.a, by: m.weight * m.module.scale) }, horizontally: false, rows: 0))
            note = "exact: ranks add up"
        case .svd:
            let svd = FactoredSVD(stacked)
            let target = options.target ?? ConversionTarget(maxRank: members.map(\.form.rank).max() ?? 1)
            let (keep, _) = Truncation.rank(singularValues: svd.s, tolerance: (target.maxRelativeError ?? 0) * svd.frobeniusNorm, maxRank: target.maxRank)
            result = DenseTruncation.balanced(u: svd.u.columns(0..<keep), s: Array(svd.s[..<keep]), vt: svd.vt.rows(0..<keep))
            bound = target.maxRelativeError
            note = "svd of the stacked factors"
        case .linear, .ties, .dareLinear, .dareTies, .magnitudePrune:
            let ranks = Set(members.map(\.form.rank))
            guard ranks.count == 1 else {
                throw ConvertError(.notSupported, "module \(name): ranks \(ranks.sorted().map(String.init).joined(separator: ", ")) differ; --method \(method.rawValue) merges A and B separately (as PEFT) and needs equal ranks — use cat or svd")
            }
            let ws = members.map { $0.weight * $0.module.scale }
            let wA = ws.map { ($0 < 0 ? -1 : 1) * abs($0).squareRoot() }, wB = ws.map { abs($0).squareRoot() }
            let a = merged(members.map(\.form.a.storage), weights: wA, module: name, part: "A", members: members, options: options)
            let b = merged(members.map(\.form.b.storage), weights: wB, module: name, part: "B", members: members, options: options)
            result = LowRankForm(b: Matrix(rows: first.outFeatures, cols: members[0].form.rank, storage: b),
                                 a: Matrix(rows: members[0].form.rank, cols: first.inFeatures, storage: a))
            note = "A and B merged separately (PEFT's \(method.rawValue)); error vs Σ w·ΔW"
        case .tiesSVD, .dareLinearSVD, .dareTiesSVD, .magnitudePruneSVD:
            // On the dense ΔW_i = s_i B_i A_i, then a truncated SVD of the merge.
            let deltas = members.map { m -> [Double] in
                var d = LA.mul(m.form.b, m.form.a).storage
                for i in d.indices { d[i] *= m.module.scale }
                return d
            }
            let mergedDelta = Matrix(rows: first.outFeatures, cols: first.inFeatures,
                                     storage: merged(deltas, weights: members.map(\.weight), module: name, part: "delta", members: members, options: options))
            let target = options.target ?? ConversionTarget(maxRank: members.map(\.form.rank).max() ?? 1)
            let t = DenseTruncation.truncate(mergedDelta, target: target)
            result = t.form
            bound = target.maxRelativeError
            note = "\(method.rawValue.dropLast("_svd".count)) on dense ΔW, then \(t.method); error vs the merged ΔW"
            denseReference = mergedDelta
        }
        let storedA = StoredTensor(result.a, dtype: options.dtype), storedB = StoredTensor(result.b, dtype: options.dtype)
        var module = AdapterModule(name: name, target: first.target, kind: first.kind, layout: first.layout,
                                   outFeatures: first.outFeatures, inFeatures: first.inFeatures, scale: 1,
                                   update: .lowRank(a: storedA, b: storedB), kernel: first.kernel)
        // Bias changes add up with the weights (PEFT's add_weighted_adapter ignores them).
        let biases = members.compactMap { m in m.module.biasDelta.map { ($0, m.weight * m.module.scale) } }
        if !biases.isEmpty {
            var sum = [Double](repeating: 0, count: first.outFeatures)
            for (b, w) in biases { for (i, v) in b.doubles().enumerated() { sum[i] += w * v } }
            module.biasDelta = StoredTensor(sum, shape: [first.outFeatures], dtype: options.dtype)
        }
        // The error of what was stored, against the method's own reference.
        let stored = LowRankForm(b: storedB.matrix(), a: storedA.matrix())
        let error: Double
        if let x = denseReference {
            let norm = x.frobeniusNorm
            let diff = DenseTruncation.residualNorm(x, stored)
            error = norm > 0 ? diff / norm : diff
        } else {
            let norm = ErrorMeasure.norm(stacked, scale: 1)
            let diff = ErrorMeasure.differenceNorm(stacked, scale: 1, stored, scale: 1)
            error = norm > 0 ? diff / norm : diff
        }
        module.conversion = ConversionRecord(method: "combine \(method.rawValue)", maxRelativeError: bound, relativeError: error,
                                             sourceParameters: sourceParameters, note: note)
        let line = ConversionSummary.Line(name: name, form: "low_rank", ranks: [result.rank], sourceParameters: sourceParameters,
                                          parameters: storedA.elementCount + storedB.elementCount, bound: bound, relativeError: error, note: note)
        return (module, line)
    }

    /// The element-wise merge of flattened task tensors (A's, B's or ΔW's) with the method's pruning.
    static func merged(_ tensors: [[Double]], weights: [Double], module: String, part: String, members: [Member], options: CombineOptions) -> [Double] {
        let density = options.density ?? 1
        switch options.method.merge {
        case .sum:
            return TaskArithmetic.weightedSum(tensors, weights: weights)
        case .magnitude:
            return TaskArithmetic.weightedSum(tensors.map { TaskArithmetic.magnitudePrune($0, density: density) }, weights: weights)
        case .ties:
            return TaskArithmetic.disjointMean(tensors.map { TaskArithmetic.magnitudePrune($0, density: density) }, weights: weights,
                                               majority: options.majoritySign)
        case .dareLinear, .dareTies:
            let pruned = zip(tensors, members).map { t, m in
                density >= 1 ? t : TaskArithmetic.randomPrune(t, keep: options.mask.keep(tensor: DropMaskKey(module: module, adapter: m.index, part: part),
                                                                                          count: t.count, density: density), density: density)
            }
            return options.method.merge == .dareLinear
                ? TaskArithmetic.weightedSum(pruned, weights: weights)
                : TaskArithmetic.disjointMean(pruned, weights: weights, majority: options.majoritySign)
        }
    }

    static func scaled(_ m: Matrix<Double>, by s: Double) -> Matrix<Double> {
        var out = m
        for i in out.storage.indices { out.storage[i] *= s }
        return out
    }

    /// Blocks side by side (`horizontally`, all with `rows` rows) or stacked vertically.
    static func concatenate(_ blocks: [Matrix<Double>], horizontally: Bool, rows: Int) -> Matrix<Double> {
        if horizontally { return StackedTucker.concatenatingColumns(blocks, rows: rows) }
        let cols = blocks.first?.cols ?? 0
        return Matrix(rows: blocks.reduce(0) { $0 + $1.rows }, cols: cols, storage: blocks.flatMap(\.storage))
    }
}
