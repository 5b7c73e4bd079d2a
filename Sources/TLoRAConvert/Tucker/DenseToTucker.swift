import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// `tlora convert dense-to-tucker`: stacks modules into groups (TensLoRA constructions) and holds
/// each group's tensor in Tucker form.
public enum DenseToTucker {
    public struct Options: Sendable {
        public var target: ConversionTarget
        public var group: GroupKind
        /// The projection family stacked by qkv constructions (default: the architecture's q/k/v).
        public var projections: [String]?
        /// Query heads, for the att constructions.
        public var heads: Int?
        /// Key/value heads (grouped-query attention); nil: each k/v projection's outputs divided by
        /// the query's head size.
        public var keyValueHeads: Int?
        /// Fixed Tucker ranks in mode order (in, row modes…, member modes…), instead of an error bound.
        public var ranks: [Int]?
        /// HOOI sweeps after ST-HOSVD (each kept only if it lowers the error).
        public var refine: Int
        public var dtype: DType
        /// Hears (groups done, groups) as groups finish, from any thread.
        public var progress: (@Sendable (Int, Int) -> Void)?

        public init(target: ConversionTarget, group: GroupKind, projections: [String]? = nil, heads: Int? = nil,
                    keyValueHeads: Int? = nil, ranks: [Int]? = nil, refine: Int = 0, dtype: DType = .f32) {
            self.keyValueHeads = keyValueHeads
            self.target = target
            self.group = group
            self.projections = projections
            self.heads = heads
            self.ranks = ranks
            self.refine = refine
            self.dtype = dtype
        }
    }

    public static func convert(_ adapter: Adapter, options: Options) throws -> (Adapter, ConversionSummary) {
        let (plans, notes) = try Grouping.plan(adapter, kind: options.group, projections: options.projections, heads: options.heads,
                                               keyValueHeads: options.keyValueHeads)
        let counter = ProgressCounter(total: plans.count, report: options.progress)
        let results = try Parallel.map(count: plans.count) { i in
            defer { counter.advance() }
            return try convert(plans[i], adapter: adapter, options: options)
        }
        var out = adapter
        var replacement: [String: AdapterModule] = [:]
        for (_, members, _) in results { for m in members { replacement[m.name] = m } }
        out.modules = adapter.modules.map { replacement[$0.name] ?? $0 }
        out.tuckerGroups = adapter.tuckerGroups.filter { g in out.modules.contains { if case .tuckerSlice(let n, _) = $0.update { return n == g.name }; return false } }
            + results.map(\.0)
        out.projections = adapter.projections.filter { p in out.modules.contains { if case .vera(let v) = $0.update { return v.projections == p.name }; return false } }
        out.metadata["conversion"] = "dense-to-tucker --group \(options.group.rawValue)"
        var summary = ConversionSummary(lines: results.map(\.2))
        summary.sharedSourceParameters = ConversionSummary.replacedGroupParameters(source: adapter, result: out)
        let moduleNames = Set(adapter.modules.map(\.name))
        summary.unchanged = notes.filter { moduleNames.contains($0.0) && replacement[$0.0] == nil }
        summary.notes = notes.filter { !moduleNames.contains($0.0) || replacement[$0.0] != nil }
        return (out, summary)
    }

    static func convert(_ plan: GroupPlan, adapter: Adapter, options: Options) throws -> (TuckerGroup, [AdapterModule], ConversionSummary.Line) {
        let modules = plan.members.map { adapter.module(named: $0.name)! }  // safe: the plan was built from these modules
        var denseNote: String? = nil
        let forms = try modules.map { m -> (LowRankForm, Double, [Int]) in
            if let f = try LowRankForm.of(m, in: adapter) { return (f, m.scale, []) }
            denseNote = "dense fallback for members without low-rank factors"
            return (try LowRankForm.orDense(m, in: adapter), m.scale, [])
        }
        let members = zip(forms, plan.members).map { ($0.0, $0.1, $1.index) }
        let rowDims = plan.heads.map { [plan.out / $0, $0] } ?? [plan.out]
        let memberDims = plan.memberModes.map(\.labels.count)
        let stacked = try StackedTucker(rowDims: rowDims, inFeatures: plan.inFeatures, members: members, memberDims: memberDims)
        let n = stacked.dimensions.count
        if let ranks = options.ranks, ranks.count != n {
            throw ConvertError(.invalidOptions, "group \(plan.name) has \(n) modes (in, \(rowDims.count == 2 ? "head_dim, head" : "out")\(memberDims.isEmpty ? "" : ", " + plan.memberModes.map(\.name).joined(separator: ", "))); --ranks gives \(ranks.count)")
        }
        let norm = stacked.norm
        let e = options.target.maxRelativeError ?? 0
        // Per-mode tolerance so that the N orthogonal truncation errors sum to at most E‖T‖.
        let tolerance = e * norm / Double(n).squareRoot()
        var (small, _) = stacked.factoredSTHOSVD(tolerance: tolerance, ranks: options.ranks, maxRank: options.target.maxRank)
        var method = "st-hosvd"
        // Only refinement needs the distance now; the stored result is measured below either way.
        var distance = options.refine > 0 ? small.distance(to: stacked.core) : 0
        for _ in 0..<options.refine {
            let next = small.hooiSweep(stacked.core)
            let d = next.distance(to: stacked.core)
            guard d < distance else { break }
            small = next
            distance = d
            method = "st-hosvd+hooi"
        }
        // Full-space factors: bases times the small factors.
        let factors = (0..<n).map { k -> Matrix<Double> in
            stacked.bases[k].map { LA.mul($0, small.factors[k]) } ?? small.factors[k]
        }
        let group = TuckerGroup(
            name: plan.name,
            core: StoredTensor(small.core.storage, shape: small.core.shape, dtype: options.dtype),
            factors: factors.map { StoredTensor($0.storage, shape: [$0.rows, $0.cols], dtype: options.dtype) },
            modes: [TuckerMode(role: .column, name: "in")]
                + (rowDims.count == 2 ? [TuckerMode(role: .row, name: "head_dim"), TuckerMode(role: .row, name: "head")] : [TuckerMode(role: .row, name: "out")])
                + plan.memberModes.map { TuckerMode(role: .member, name: $0.name, labels: $0.labels) })
        // Measure on the stored (rounded) group, in the small space. Each stored factor splits as
        // U_k' = Q_k P_k + N_k with P_k = Q_kᵀ U_k' and N_k ⊥ Q_k (rounding residue). Then
        // T̂' = Σ_S G' ×_{k∈S} N_k ×_{k∉S} Q_k P_k over subsets S of the based modes, the terms are
        // mutually orthogonal, the S = ∅ term lies in the bases' span (compared with T's small core
        // directly) and every other term's norm comes from small Gram matrices — nothing cancels.
        // With the rounding δ = U_k' − Q_k S_k and W = Q_kᵀ δ: P_k = S_k + W and
        // N_kᵀN_k = δᵀδ − WᵀW (δᵀ(I − QQᵀ)δ), two products with Q_k's size instead of three.
        let storedCore = group.core.tensor()
        let storedFactors = group.factors.map { $0.matrix() }
        var projected = storedCore
        var gramP: [Matrix<Double>] = [], gramN: [Matrix<Double>?] = []
        for k in 0..<n {
            let u = storedFactors[k]
            if let q = stacked.bases[k] {
                var delta = u
                for i in delta.storage.indices { delta.storage[i] -= factors[k].storage[i] }
                let w = LA.mul(q, delta, ta: true)
                var p = small.factors[k]
                for i in p.storage.indices { p.storage[i] += w.storage[i] }
                var gram = LA.mul(delta, delta, ta: true)
                let gramW = LA.mul(w, w, ta: true)
                for i in gram.storage.indices { gram.storage[i] -= gramW.storage[i] }
                projected = TensorOps.modeProduct(projected, p, mode: k)
                gramP.append(LA.mul(p, p, ta: true))
                gramN.append(gram)
            } else {
                projected = TensorOps.modeProduct(projected, u, mode: k)
                gramP.append(LA.mul(u, u, ta: true))
                gramN.append(nil)
            }
        }
        var residual = stacked.core.storage
        for i in residual.indices { residual[i] -= projected.storage[i] }
        let inSpan = ErrorMeasure.frobenius(residual)
        let based = (0..<n).filter { gramN[$0] != nil }
        var outside2 = 0.0
        for subset in 1..<(1 << based.count) {
            var weighted = storedCore
            for k in 0..<n {
                let inS = based.firstIndex(of: k).map { subset & (1 << $0) != 0 } ?? false
                // Safe: gramN[k] is non-nil for every based mode, and inS implies based.
                weighted = TensorOps.modeProduct(weighted, inS ? gramN[k]! : gramP[k], mode: k)
            }
            outside2 += max(0, TensorOps.inner(storedCore, weighted))
        }
        let diff2 = inSpan * inSpan + outside2
        // Per member: its slice of the in-span difference (the bound itself applies to the group).
        let memberStride = memberDims.reduce(1, *)
        var newModules: [AdapterModule] = []
        for (m, member) in zip(modules, members) {
            var offset = 0
            for (d, i) in zip(memberDims, member.2) { offset = offset * d + i }
            var d2 = 0.0, x2 = 0.0
            var e = offset
            while e < residual.count {
                d2 += residual[e] * residual[e]
                x2 += stacked.core.storage[e] * stacked.core.storage[e]
                e += memberStride
            }
            var slice = m
            slice.update = .tuckerSlice(group: group.name, index: member.2)
            slice.scale = 1
            slice.conversion = ConversionRecord(method: method, maxRelativeError: options.target.maxRelativeError,
                                                relativeError: x2 > 0 ? (d2 / x2).squareRoot() : d2.squareRoot(),
                                                sourceParameters: adapter.parameterCount(of: m),
                                                note: "slice of \(group.name); the bound applies to the group")
            newModules.append(slice)
        }
        let error = norm > 0 ? diff2.squareRoot() / norm : diff2.squareRoot()
        try DenseToTT.checkBound(error, e: options.target.maxRelativeError, module: plan.name, dtype: options.dtype)
        var recorded = group
        recorded.conversion = ConversionRecord(method: method, maxRelativeError: options.target.maxRelativeError, relativeError: error,
                                               sourceParameters: modules.reduce(0) { $0 + adapter.parameterCount(of: $1) },
                                               note: denseNote ?? "from factors")
        let line = ConversionSummary.Line(name: plan.name, form: "tucker", ranks: small.core.shape,
                                          sourceParameters: modules.reduce(0) { $0 + adapter.parameterCount(of: $1) },
                                          parameters: group.parameterCount, bound: options.target.maxRelativeError, relativeError: error,
                                          note: denseNote ?? "from factors", members: modules.map(\.name))
        return (recorded, newModules, line)
    }
}
