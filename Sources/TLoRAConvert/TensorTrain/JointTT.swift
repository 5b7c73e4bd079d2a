import TLoRAModel
import TLoRANumerics

/// `dense-to-tt --joint`: TensorGuide's form, one train holding both LoRA factors (a `joint_train`
/// update, docs/FORMAT.md §2.3), built from the factors without forming `ΔW`.
///
/// Construction (docs/NUMERICS.md, "Joint tensor train"): the exact SVD of the update from its
/// factors, `U = P S Qᵀ` (rank `r` = number of nonzero singular values, possibly truncated first), is
/// split into gauge-balanced factors `B = P √S` (`out × r`) and `A = √S Qᵀ` (`r × in`), so that
/// `‖A‖₂ = ‖B‖₂ = √σ₁`. They are laid out as TT2LoRA does: `v = [vec(Aᵀ); vec(Bᵀ)]` (row-major
/// `in × r`, then row-major `r × out`; `L = r(in + out)` values), and `v`, reshaped over the modes
/// of `L`, is held as a tensor train by TT-SVD with Oseledets' per-bond threshold `η‖v‖/√(d−1)`.
/// The latent is the single value 1 (every latent mode 1), so the generator's output is `v` itself.
enum JointTT {
    /// What one module's conversion found.
    struct Result {
        var module: AdapterModule
        var line: ConversionSummary.Line
    }

    /// `η` such that a TT error `‖v − v̂‖ ≤ η‖v‖` on the balanced factors keeps the update's relative
    /// error within `e`: with `σ₁` the largest singular value, `N = Σσ_i` and `F = ‖U‖_F`,
    /// `‖U − Û‖_F ≤ 2η√(σ₁N) + η²N`, so `η` solves `(N/F)·η² + (2√(σ₁N)/F)·η = e`.
    static func apriori(_ e: Double, singularValues s: [Double]) -> Double {
        guard e > 0, let s1 = s.first, s1 > 0 else { return 0 }
        let nuclear = s.reduce(0, +), frobenius = s.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let a = nuclear / frobenius, b = 2 * (s1 * nuclear).squareRoot() / frobenius
        return (-b + (b * b + 4 * a * e).squareRoot()) / (2 * a)
    }

    /// `search: false` keeps the a-priori truncation (tests check that it alone meets the bound).
    static func convert(_ m: AdapterModule, in adapter: Adapter, options: DenseToTT.Options, search: Bool = true) throws -> Result {
        let hasFactors = LowRankForm.hasFactors(m)
        let source = try LowRankForm.orDense(m, in: adapter)
        let svd = FactoredSVD(source)
        let norm = svd.frobeniusNorm
        let e = options.target.maxRelativeError ?? 0
        // Half the budget may go to the factor rank (an exact SVD tail), the rest to the train.
        let (rank, tail) = Truncation.rank(singularValues: svd.s.map { $0 > 0 ? $0 : 0 }, tolerance: e / 2 * norm)
        let (out, inn) = (m.outFeatures, m.inFeatures)
        let lengthTotal = rank * (out + inn)
        var v = [Double](repeating: 0, count: lengthTotal)
        for k in 0..<rank {
            let root = svd.s[k].squareRoot()
            for i in 0..<inn { v[i * rank + k] = svd.vt[k, i] * root }
            for o in 0..<out { v[inn * rank + k * out + o] = svd.u[o, k] * root }
        }
        let modes = TTModes.factorize(lengthTotal, maxMode: options.maxMode)
        let eTrain = norm > 0 ? max(0, e - tail / norm) : 0
        let eta0 = apriori(eTrain, singularValues: Array(svd.s.prefix(rank)))
        let reference = source
        func attempt(_ eta: Double) -> (JointTrain, Double) {
            let d = modes.count
            let cores = TTCores.fromDense(Matrix(rows: lengthTotal, cols: 1, storage: v),
                                          modes: TTModes(rows: modes, columns: Array(repeating: 1, count: d)),
                                          tolerance: { n in d > 1 ? eta / Double(d - 1).squareRoot() * n : 0 },
                                          maxRank: options.target.maxRank).0
            // [r, m, 1, r'] → TT2LoRA's [r, n = 1, m, r'] (the same bytes).
            let stored = cores.cores.map { StoredTensor($0.storage, shape: [$0.shape[0], 1, $0.shape[1], $0.shape[3]], dtype: options.dtype) }
            let joint = JointTrain(cores: stored, latent: StoredTensor([1.0], shape: [1, 1], dtype: options.dtype), rank: rank)
            let f = JointFactors.factors(joint, outFeatures: out, inFeatures: inn)
            let diff = ErrorMeasure.differenceNorm(reference, scale: 1, f, scale: 1)
            return (joint, norm > 0 ? diff / norm : diff)
        }
        var (best, _) = attempt(eta0)
        var how = "from factors: balanced SVD factors, joint vector of \(lengthTotal), a-priori η \(shortText(eta0))"
        if search, e > 0, options.target.maxRank == Int.max {
            // The a-priori η is a worst case; looser truncations are kept when the MEASURED ΔW error
            // (exact, from the factors) stays within E.
            var eta = eta0
            var searched = false
            for _ in 0..<12 where eta < 1 {
                eta *= 2
                let (candidate, error) = attempt(eta)
                guard error <= e else { break }
                if candidate.parameterCount < best.parameterCount { (best, searched) = (candidate, true) }
            }
            if searched { how += ", loosened while the measured error stayed within E" }
        }
        if !hasFactors { how = "dense fallback: the update has no low-rank factors; " + how }
        var result = m
        result.update = .jointTrain(best)
        // Measured again on the stored module, like every conversion.
        let error = try DenseToTT.relativeError(source: m, result: result, in: adapter)
        try DenseToTT.checkBound(error, e: options.target.maxRelativeError, module: m.name, dtype: options.dtype)
        let sourceParameters = adapter.parameterCount(of: m)
        result.conversion = ConversionRecord(method: "joint-tt-svd", maxRelativeError: options.target.maxRelativeError, relativeError: error,
                                             sourceParameters: sourceParameters, note: "rank \(rank) factors; " + how)
        let line = ConversionSummary.Line(name: m.name, form: UpdateKind.jointTrain.rawValue, ranks: Array(best.ranks.dropFirst().dropLast()),
                                          sourceParameters: sourceParameters, parameters: best.parameterCount,
                                          bound: options.target.maxRelativeError, relativeError: error, note: "rank \(rank); " + how)
        return Result(module: result, line: line)
    }

    static func shortText(_ x: Double) -> String {
        guard x > 0, x.isFinite else { return "0" }
        var e = 0, m = x
        while m >= 10 { m /= 10; e += 1 }
        while m < 1 { m *= 10; e -= 1 }
        let digits = Int((m * 100).rounded())
        return "\(digits / 100).\(digits % 100 < 10 ? "0" : "")\(digits % 100)e\(e)"
    }
}
