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
        let rowDims = plan.heads.map { [plan.out / $0, $0] } ?? [plan.out]
        let memberDims = plan.memberModes.map(\.labels.count)
        var denseNote: String? = nil
        // The members' f64 factors live only while the bases and projected factors are built.
        let stacked = try { () throws -> StackedTucker in
            let members = try zip(modules, plan.members).map { m, p -> (LowRankForm, Double, [Int]) in
                if let f = try LowRankForm.of(m, in: adapter) { return (f, m.scale, p.index) }
                denseNote = "dense fallback for members without low-rank factors"
                return (try LowRankForm.orDense(m, in: adapter), m.scale, p.index)
            }
            return try StackedTucker(rowDims: rowDims, inFeatures: plan.inFeatures, members: members, memberDims: memberDims)
        }()
        releaseFreeMemory()  // the members' f64 factors and the QR work arrays
        let n = stacked.dimensions.count
        if let ranks = options.ranks, ranks.count != n {
            throw ConvertError(.invalidOptions, "group \(plan.name) has \(n) modes (in, \(rowDims.count == 2 ? "head_dim, head" : "out")\(memberDims.isEmpty ? "" : ", " + plan.memberModes.map(\.name).joined(separator: ", "))); --ranks gives \(ranks.count)")
        }
        let norm = stacked.norm
        let e = options.target.maxRelativeError ?? 0
        // Per-mode tolerance so that the N orthogonal truncation errors sum to at most E‖T‖.
        let tolerance = e * norm / Double(n).squareRoot()
        let truncated = stacked.factoredSTHOSVD(tolerance: tolerance, ranks: options.ranks, maxRank: options.target.maxRank)
        var smallFactors = truncated.factors
        var method = "st-hosvd"
        let storedCore: StoredTensor
        if options.refine > 0 {
            // HOOI needs the dense core; only refinement builds it.
            let dense = stacked.denseCore()
            var small = SmallTucker(factors: smallFactors, core: truncated.core.dense())
            var distance = small.distance(to: dense)
            for _ in 0..<options.refine {
                let next = small.hooiSweep(dense)
                let d = next.distance(to: dense)
                guard d < distance else { break }
                small = next
                distance = d
                method = "st-hosvd+hooi"
            }
            smallFactors = small.factors
            storedCore = StoredTensor(small.core.storage, shape: small.core.shape, dtype: options.dtype)
        } else {
            storedCore = truncated.core.stored(as: options.dtype)
        }
        // Full-space factors (bases times the small factors), one at a time: each is stored and its
        // rounding bounded before the next is formed.
        var growth = 1.0
        let storedFactors = (0..<n).map { k -> StoredTensor in
            guard let q = stacked.bases[k] else {
                let f = smallFactors[k]
                return StoredTensor(f.storage, shape: [f.rows, f.cols], dtype: options.dtype)
            }
            let full = LA.mul(q, smallFactors[k])
            let stored = StoredTensor(full.storage, shape: [full.rows, full.cols], dtype: options.dtype)
            growth *= 1 + StackedTucker.roundingNorm(stored: stored, exact: full)
            return stored
        }
        let group = TuckerGroup(
            name: plan.name, core: storedCore, factors: storedFactors,
            modes: [TuckerMode(role: .column, name: "in")]
                + (rowDims.count == 2 ? [TuckerMode(role: .row, name: "head_dim"), TuckerMode(role: .row, name: "head")] : [TuckerMode(role: .row, name: "out")])
                + plan.memberModes.map { TuckerMode(role: .member, name: $0.name, labels: $0.labels) })
        let ranks = storedCore.shape
        // Measured on the stored (rounded) group, member by member (StackedTucker+StoredError).
        let measured = stacked.storedError(factors: smallFactors, rounding: growth - 1, stored: group)
        var newModules: [AdapterModule] = []
        for (i, (m, member)) in zip(modules, plan.members).enumerated() {
            let x = measured.memberNorms[i], d = measured.members[i]
            var slice = m
            slice.update = .tuckerSlice(group: group.name, index: member.index)
            slice.scale = 1
            slice.conversion = ConversionRecord(method: method, maxRelativeError: options.target.maxRelativeError,
                                                relativeError: x > 0 ? d / x : d,
                                                sourceParameters: adapter.parameterCount(of: m),
                                                note: "slice of \(group.name); the bound applies to the group")
            newModules.append(slice)
        }
        let diff = measured.total
        let error = norm > 0 ? diff / norm : diff
        try DenseToTT.checkBound(error, e: options.target.maxRelativeError, module: plan.name, dtype: options.dtype)
        var recorded = group
        recorded.conversion = ConversionRecord(method: method, maxRelativeError: options.target.maxRelativeError, relativeError: error,
                                               sourceParameters: modules.reduce(0) { $0 + adapter.parameterCount(of: $1) },
                                               note: denseNote ?? "from factors")
        let line = ConversionSummary.Line(name: plan.name, form: "tucker", ranks: ranks,
                                          sourceParameters: modules.reduce(0) { $0 + adapter.parameterCount(of: $1) },
                                          parameters: group.parameterCount, bound: options.target.maxRelativeError, relativeError: error,
                                          note: denseNote ?? "from factors", members: modules.map(\.name))
        return (recorded, newModules, line)
    }
}
