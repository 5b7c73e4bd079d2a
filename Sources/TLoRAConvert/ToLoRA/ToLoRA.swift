import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// `tlora convert to-lora`: any update (TT, Tucker slice, dense, LoRA) as plain `B · A`, at the exact
/// rank or truncated (LoRA rank resizing, as kohya's resize_lora, with the error stated).
public enum ToLoRA {
    public struct Options: Sendable {
        public var target: ConversionTarget
        /// Storage dtype of the factors; nil = f32 for converted updates (LoRA modules keep theirs
        /// when left untouched).
        public var dtype: DType?
        /// Hears (modules done, modules) as modules finish, from any thread.
        public var progress: (@Sendable (Int, Int) -> Void)?

        public init(target: ConversionTarget = .lossless, dtype: DType? = nil) {
            self.target = target
            self.dtype = dtype
        }
    }

    /// Converts the modules `only` selects (all by default) and keeps the others as they are;
    /// Tucker groups and shared projections no module refers to any more are dropped.
    public static func convert(_ adapter: Adapter, options: Options, only: (AdapterModule) -> Bool = { _ in true }) throws -> (Adapter, ConversionSummary) {
        let selected = adapter.modules.indices.filter { only(adapter.modules[$0]) }
        let counter = ProgressCounter(total: selected.count, report: options.progress)
        let results = try Parallel.map(count: selected.count) { i in
            defer { counter.advance() }
            let m = adapter.modules[selected[i]]
            guard m.update.isAdditive else {
                throw ConvertError(.notSupported, "module \(m.name) is an IA³ rescaling (W ⊙ v): it has no low-rank form; merge and export take it as it is")
            }
            return try convert(m, in: adapter, options: options)
        }
        var out = adapter
        for (i, r) in zip(selected, results) { out.modules[i] = r.0 }
        let kept = out.modules
        out.tuckerGroups = adapter.tuckerGroups.filter { g in kept.contains { if case .tuckerSlice(let n, _) = $0.update { return n == g.name }; return false } }
        out.projections = adapter.projections.filter { p in kept.contains { if case .vera(let v) = $0.update { return v.projections == p.name }; return false } }
        out.metadata["conversion"] = "to-lora"
        var summary = ConversionSummary(lines: results.map(\.1))
        summary.sharedSourceParameters = ConversionSummary.replacedGroupParameters(source: adapter, result: out)
        return (out, summary)
    }

    /// `U = U_k S_k V_kᵀ` from the exact factors (`FactoredSVD`), truncated to the smallest rank whose
    /// tail is ≤ E‖ΔW‖ (so ‖ΔW − ΔŴ‖_F ≤ E‖ΔW‖_F, Eckart–Young: no rank-k matrix does better),
    /// returned as `B = U_k √S_k`, `A = √S_k V_kᵀ` (balanced factors round best in low precision).
    static func convert(_ m: AdapterModule, in adapter: Adapter, options: Options) throws -> (AdapterModule, ConversionSummary.Line) {
        let sourceParameters = adapter.parameterCount(of: m)
        // A LoRA module at no truncation is kept bit for bit.
        if case .lowRank(let a, _) = m.update, options.target.maxRelativeError == 0, options.target.maxRank >= a.shape[0], options.dtype == nil {
            return (m, ConversionSummary.Line(name: m.name, form: UpdateKind.lowRank.rawValue, ranks: [a.shape[0]], sourceParameters: sourceParameters,
                                              parameters: sourceParameters, bound: 0, relativeError: 0, note: "unchanged"))
        }
        let e = options.target.maxRelativeError ?? 0
        // Lossless: a Tucker slice, a train or a dense update stored in f32 has directions that
        // are only its storage's rounding (a slice of a 48-rank core whose update has rank 16);
        // they are dropped while their tail stays within twice the source's unit roundoff.
        let noise = e == 0 && options.target.maxRank == Int.max ? Self.roundingNoise(of: m, in: adapter) : 0
        var directions = 0
        let dtype = options.dtype ?? .f32
        let factors: LowRankForm
        /// The kept singular values when the whole Kronecker spectrum was kept (its error is then
        /// only rounding, measured from small Grams).
        var keptWhole: [Double]? = nil
        if case .kronecker(let k) = m.update {
            // The SVD of W1 ⊗ W2 from the halves' SVDs: no out × in work at all.
            let svd = KroneckerSVD(k)
            let s = svd.singularValues
            let (rank, _) = Truncation.rank(singularValues: s, tolerance: e * ErrorMeasure.frobenius(s), maxRank: options.target.maxRank)
            factors = svd.balancedFactors(rank: max(rank, 1))
            if s.dropFirst(max(rank, 1)).allSatisfy({ $0 == 0 }), s[0] > 0 { keptWhole = Array(s.prefix(max(rank, 1))) }
        } else {
            let svd = FactoredSVD(try LowRankForm.orDense(m, in: adapter))
            var (rank, _) = Truncation.rank(singularValues: svd.s, tolerance: max(e, noise) * svd.frobeniusNorm, maxRank: options.target.maxRank)
            rank = max(rank, 1)
            directions = svd.s.filter { $0 > 0 }.count
            var b = Matrix<Double>(rows: m.outFeatures, cols: rank)
            var a = Matrix<Double>(rows: rank, cols: m.inFeatures)
            for k in 0..<rank {
                let root = svd.s[k].squareRoot()
                for i in 0..<m.outFeatures { b[i, k] = svd.u[i, k] * root }
                for j in 0..<m.inFeatures { a[k, j] = svd.vt[k, j] * root }
            }
            factors = LowRankForm(b: b, a: a)
        }
        let (a, b, rank) = (factors.a, factors.b, factors.rank)
        var result = m
        result.update = .lowRank(a: StoredTensor(a, dtype: dtype), b: StoredTensor(b, dtype: dtype))
        let error: Double
        if let kept = keptWhole {
            let stored = (StoredTensor(b, dtype: dtype).matrix(), StoredTensor(a, dtype: dtype).matrix())
            error = KroneckerSVD.roundingError(exact: factors, storedB: stored.0, storedA: stored.1, singularValues: kept)
                / ErrorMeasure.frobenius(kept)
        } else {
            error = try DenseToTT.relativeError(source: m, result: result, in: adapter)
        }
        // Lossless with dropped noise: an f64 result is held to the noise it dropped (an f32 one
        // adds its own rounding, which a lossless target has always allowed).
        let bound = noise > 0 && dtype == .f64 ? noise + 1e-12 : options.target.maxRelativeError
        try DenseToTT.checkBound(error, e: bound, module: m.name, dtype: dtype)
        var note = LowRankForm.hasFactors(m) ? "from factors" : "dense fallback: the update has no low-rank factors"
        if noise > 0, rank < directions { note += "; \(directions - rank) directions below the source's rounding dropped" }
        result.conversion = ConversionRecord(method: "svd-truncate", maxRelativeError: options.target.maxRelativeError, relativeError: error,
                                             sourceParameters: sourceParameters, note: note)
        return (result, ConversionSummary.Line(name: m.name, form: UpdateKind.lowRank.rawValue, ranks: [rank], sourceParameters: sourceParameters,
                                               parameters: rank * (m.outFeatures + m.inFeatures), bound: options.target.maxRelativeError,
                                               relativeError: error, note: note))
    }
}

extension ToLoRA {
    /// Twice the unit roundoff of the coarsest dtype `m`'s update is stored in, for the forms whose
    /// stored size exceeds their rank (0 for LoRA and the other factored kinds: their product has
    /// no direction beyond their rank).
    static func roundingNoise(of m: AdapterModule, in adapter: Adapter) -> Double {
        let tensors: [StoredTensor]
        switch m.update {
        case .tensorTrain(let tt): tensors = tt.cores
        case .jointTrain(let j): tensors = j.cores + [j.latent]
        case .dense(let d): tensors = [d]
        case .tuckerSlice(let group, _):
            guard let g = adapter.tuckerGroup(named: group) else { return 0 }
            tensors = [g.core] + g.factors
        default:
            // Factored kinds whose product has exactly their rank (LoRA, Kronecker, Hadamard, …).
            return 0
        }
        return 2 * (tensors.map(\.dtype.unitRoundoff).max() ?? 0)
    }
}

extension LowRankForm {
    /// Whether `module`'s update has factors without densifying (for reporting).
    static func hasFactors(_ m: AdapterModule) -> Bool {
        switch m.update {
        case .lowRank, .tuckerSlice, .jointTrain, .convTucker, .kronecker, .hadamard, .diagonalLowRank, .vera: return true
        case .dense, .featureScale: return false
        case .tensorTrain(let tt): return separable(tt) != nil
        }
    }
}
