/// Options of `randomizedSVD`. Give a `rank`, a `tolerance`, or both (then the rank caps the
/// adaptive search).
public struct RandomizedSVDOptions: Sendable {
    /// Target rank k: the result has (at most) k singular triplets.
    public var rank: Int?
    /// Absolute Frobenius tolerance: stop when ‖a − u·diag(s)·vᵀ‖_F ≤ tolerance (estimated).
    public var tolerance: Double?
    /// Extra sample columns p beyond the rank (fixed-rank mode).
    public var oversampling: Int
    /// Power (subspace) iterations q: each multiplies by (a aᵀ) once more, with re-orthonormalization.
    public var powerIterations: Int
    /// Columns added per step in the tolerance-driven mode.
    public var blockSize: Int
    /// Seed of the Gaussian test matrices: the same seed gives the same result.
    public var seed: UInt64

    public init(rank: Int? = nil, tolerance: Double? = nil, oversampling: Int = 10, powerIterations: Int = 2,
                blockSize: Int = 32, seed: UInt64 = 0x7105_5EED) {
        self.rank = rank
        self.tolerance = tolerance
        self.oversampling = oversampling
        self.powerIterations = powerIterations
        self.blockSize = blockSize
        self.seed = seed
    }
}

/// A randomized SVD and what it knows about its own error.
public struct RandomizedSVDResult: Sendable {
    /// u (m×r), s (r, descending), vt (r×n).
    public var svd: SVDResult
    /// ‖a − u·diag(s)·vt‖_F, computed as √(‖a‖² − ‖QᵀA‖² + discarded²); reliable down to about
    /// 1e-7·‖a‖_F (below that the subtraction cancels — use `svd` for such accuracy).
    public var estimatedError: Double
}

/// Randomized SVD (Halko, Martinsson & Tropp 2011) for large dense matrices of low numerical rank.
///
/// Fixed rank k (HMT Alg. 4.4 + 5.1): Ω n×(k+p) Gaussian, Q = orth(A Ω), then q power iterations
/// Q ← orth(A · orth(Aᵀ Q)) (re-orthonormalizing by QR each half-step, so the small singular
/// directions are not lost to rounding), then the exact SVD of the small B = Qᵀ A
/// ((k+p) × n), u = Q·U_B, truncated to k. With tolerance ε: the blocked adaptive range finder
/// (Martinsson & Voronin 2016, randQB_b): blocks of b Gaussian columns, each projected off the
/// current Q (twice), power-iterated, orthonormalized and appended until the residual estimate
/// ‖A‖_F² − ‖QᵀA‖_F² ≤ ε²; then the SVD of B is truncated as far as the remaining budget allows.
///
/// Error behaviour (HMT Cor. 10.10, fixed rank, p ≥ 2, spectral norm, in expectation):
///
///     E‖A − QQᵀA‖ ≤ [1 + √(k/(p−1)) + e·√(k+p)/p · √(min(m,n) − k)]^{1/(2q+1)} · σ_{k+1},
///
/// so with a decaying spectrum and q ≥ 1 the error is within a small factor of σ_{k+1} — the best
/// any rank-k approximation can do — and it is exact (to rounding) when rank(A) ≤ k + p. The
/// Frobenius error of the returned rank-k factorization is √(‖A − QQᵀA‖_F² + ‖B − B_k‖_F²) ≤
/// √(‖A − QQᵀA‖_F² + Σ_{i>k} σ_i²) (the two parts are orthogonal).
/// Deterministic for a given seed.
/// - Complexity: (2q + 2) GEMMs of m×n×(k+p) plus QRs of m×(k+p) and n×(k+p), plus an SVD of
///   (k+p)×n; memory O((m+n)(k+p)).
public func randomizedSVD(_ a: Matrix<Double>, _ options: RandomizedSVDOptions) -> RandomizedSVDResult {
    precondition(options.rank != nil || options.tolerance != nil, "randomizedSVD needs a rank or a tolerance")
    precondition((options.rank ?? 1) >= 0 && options.oversampling >= 0 && options.powerIterations >= 0 && options.blockSize >= 1)
    let m = a.rows, n = a.cols, full = min(m, n)
    let norm = a.frobeniusNorm
    if full == 0 || norm == 0 {
        let r = min(options.rank ?? 0, full)
        var u = Matrix<Double>(rows: m, cols: r), vt = Matrix<Double>(rows: r, cols: n)
        for i in 0..<r { u[i, i] = 1; vt[i, i] = 1 }
        return RandomizedSVDResult(svd: SVDResult(u: u, s: [Double](repeating: 0, count: r), vt: vt), estimatedError: 0)
    }
    var sampler = GaussianSampler(seed: options.seed)
    var q: Matrix<Double>
    if let tol = options.tolerance {
        q = RandomizedRange.adaptive(a, tolerance: tol, maxRank: min(options.rank.map { $0 + options.oversampling } ?? full, full),
                                     block: options.blockSize, powerIterations: options.powerIterations, norm: norm, sampler: &sampler)
    } else {
        let l = min((options.rank ?? 0) + options.oversampling, full)
        q = RandomizedRange.fixed(a, columns: l, powerIterations: options.powerIterations, sampler: &sampler)
    }
    // B = Qᵀ A, its exact SVD, u = Q U_B.
    let b = matmul(q, a, transposeA: true)
    let small = svd(b)
    var captured2 = 0.0
    for s in small.s { captured2 += s * s }
    let outside2 = max(norm * norm - captured2, 0)  // ‖A − QQᵀA‖_F²
    var keep = small.s.count
    if let r = options.rank { keep = min(keep, r) }
    if let tol = options.tolerance {
        let budget = max(tol * tol - outside2, 0).squareRoot()
        keep = min(keep, truncationRank(singularValues: small.s, tolerance: budget).rank)
    }
    var discarded2 = 0.0
    for s in small.s[keep...] { discarded2 += s * s }
    let u = matmul(q, small.u.columns(0..<keep))
    let result = SVDResult(u: u, s: Array(small.s[..<keep]), vt: small.vt.rows(0..<keep))
    return RandomizedSVDResult(svd: result, estimatedError: (outside2 + discarded2).squareRoot())
}

/// Orthonormal bases for the range of a matrix from Gaussian samples.
enum RandomizedRange {
    /// orth(A Ω) with q power iterations, Ω n × l.
    static func fixed(_ a: Matrix<Double>, columns l: Int, powerIterations: Int, sampler: inout GaussianSampler) -> Matrix<Double> {
        let omega = sampler.matrix(rows: a.cols, cols: l)
        var q = householderQR(matmul(a, omega)).q
        for _ in 0..<powerIterations {
            let w = householderQR(matmul(a, q, transposeA: true)).q
            q = householderQR(matmul(a, w)).q
        }
        return q
    }

    /// Blocks of `block` columns until ‖A‖_F² − ‖QᵀA‖_F² ≤ tolerance² or `maxRank` columns.
    static func adaptive(_ a: Matrix<Double>, tolerance: Double, maxRank: Int, block: Int, powerIterations: Int, norm: Double,
                         sampler: inout GaussianSampler) -> Matrix<Double> {
        let m = a.rows
        var q = Matrix<Double>(rows: m, cols: 0)
        var remaining2 = norm * norm
        while q.cols < maxRank && remaining2 > tolerance * tolerance {
            let b = min(block, maxRank - q.cols)
            var y = matmul(a, sampler.matrix(rows: a.cols, cols: b))
            y = projectOut(y, q)
            for _ in 0..<powerIterations {
                let w = householderQR(matmul(a, householderQR(y).q, transposeA: true)).q
                y = projectOut(matmul(a, w), q)
            }
            let qi = householderQR(projectOut(y, q)).q  // second projection: Q stays orthonormal to working precision
            let bi = matmul(qi, a, transposeA: true)
            let captured = bi.frobeniusNorm
            q = concatenateColumns(q, qi)
            remaining2 -= captured * captured
            if captured <= 1e-15 * norm { break }  // the range is exhausted (exactly low rank)
        }
        return q
    }

    /// y − Q (Qᵀ y).
    static func projectOut(_ y: Matrix<Double>, _ q: Matrix<Double>) -> Matrix<Double> {
        guard q.cols > 0 else { return y }
        var out = y
        let proj = matmul(q, matmul(q, y, transposeA: true))
        for i in out.storage.indices { out.storage[i] -= proj.storage[i] }
        return out
    }

    static func concatenateColumns(_ x: Matrix<Double>, _ y: Matrix<Double>) -> Matrix<Double> {
        var out = Matrix<Double>(rows: x.rows, cols: x.cols + y.cols)
        for r in 0..<x.rows {
            for c in 0..<x.cols { out[r, c] = x[r, c] }
            for c in 0..<y.cols { out[r, x.cols + c] = y[r, c] }
        }
        return out
    }
}
