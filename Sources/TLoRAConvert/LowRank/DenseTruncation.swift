import TLoRAIO
import TLoRANumerics

/// A dense update (a fine-tune's `ΔW = W_ft − W_base`, or a TIES/DARE merge of several updates) held
/// as a truncated SVD `B·A`, with its error measured, never assumed.
///
/// Routes: the exact SVD when the smaller side is at most `exactLimit` (a 384×1536 BERT matrix: a
/// few milliseconds) or the rank asked for is a large part of it; otherwise a randomized SVD
/// (Halko–Martinsson–Tropp: p = 10 oversampling columns, q = 2 power iterations; blocked adaptive
/// range finder for an error target), whose result is then measured exactly, `‖X − B·A‖_F` from
/// the dense residual (one GEMM of the kept rank). If the randomized result misses an error
/// target (its built-in estimate cancels below ~1e-7 and is only an estimate), the exact SVD is
/// taken instead, so a stated `--max-rel-error` always holds on the returned factors.
/// The factors are balanced: `B = U√S`, `A = √S Vᵀ` (as mergekit's `--distribute-scale`).
public enum DenseTruncation {
    public struct Result: Sendable {
        public var form: LowRankForm
        /// ‖X − B·A‖_F, measured.
        public var error: Double
        /// ‖X‖_F.
        public var norm: Double
        /// "svd" (exact) or "randomized svd".
        public var method: String

        public var relativeError: Double { norm > 0 ? error / norm : error }
    }

    /// Largest smaller side that always takes the exact SVD.
    public static let exactLimit = 512

    /// Truncates `x` by rank, by relative error, or both (`target.maxRelativeError` nil: exactly
    /// `min(maxRank, min(m, n))` directions, as mergekit does).
    /// - Complexity: exact: one SVD; randomized: ≈ (2q + 3) GEMMs of m×n×(k+p).
    public static func truncate(_ x: Matrix<Double>, target: ConversionTarget, seed: UInt64 = 0x7105_5EED) -> Result {
        let full = min(x.rows, x.cols)
        let norm = x.frobeniusNorm
        let cap = min(target.maxRank, full)
        if full == 0 || norm == 0 {
            // Nothing to hold: one zero direction keeps the shapes valid.
            let k = min(1, full)
            return Result(form: LowRankForm(b: Matrix(rows: x.rows, cols: k), a: Matrix(rows: k, cols: x.cols)), error: 0, norm: norm, method: "svd")
        }
        let tolerance = (target.maxRelativeError ?? 0) * norm
        let exact = full <= exactLimit || (target.maxRelativeError == nil && 4 * cap >= full)
        if !exact {
            if target.maxRelativeError == nil {
                let r = randomizedSVD(x, RandomizedSVDOptions(rank: cap, seed: seed))
                let form = balanced(u: r.svd.u, s: r.svd.s, vt: r.svd.vt)
                return Result(form: form, error: residualNorm(x, form), norm: norm, method: "randomized svd")
            }
            // The adaptive range finder, aiming a little inside the bound (its stopping estimate is
            // not the measurement), searching up to a quarter of the side: beyond that the exact
            // SVD is cheaper, and certain.
            let limit = min(cap, full / 4)
            let r = randomizedSVD(x, RandomizedSVDOptions(rank: limit, tolerance: 0.95 * tolerance, seed: seed))
            let form = balanced(u: r.svd.u, s: r.svd.s, vt: r.svd.vt)
            let error = residualNorm(x, form)
            if error <= tolerance || (limit == cap && r.svd.s.count >= cap) {
                return Result(form: form, error: error, norm: norm, method: "randomized svd")
            }
        }
        let (u, s, svt) = LA.leftSVD(x)  // svt = diag(s)·vᵀ
        var keep: Int
        if target.maxRelativeError != nil {
            keep = Truncation.rank(singularValues: s, tolerance: tolerance, maxRank: cap).rank
        } else {
            keep = cap
        }
        keep = max(min(keep, s.count), 1)
        var vt = svt.rows(0..<keep)
        for i in 0..<keep {
            let inv = s[i] > 0 ? 1 / s[i] : 0
            for j in 0..<vt.cols { vt[i, j] *= inv }
        }
        let form = balanced(u: u.columns(0..<keep), s: Array(s[..<keep]), vt: vt)
        return Result(form: form, error: residualNorm(x, form), norm: norm, method: "svd")
    }

    /// `B = U√S`, `A = √S Vᵀ`.
    static func balanced(u: Matrix<Double>, s: [Double], vt: Matrix<Double>) -> LowRankForm {
        var b = u, a = vt
        for j in 0..<s.count {
            let r = s[j].squareRoot()
            for i in 0..<b.rows { b[i, j] *= r }
            for i in 0..<a.cols { a[j, i] *= r }
        }
        return LowRankForm(b: b, a: a)
    }

    /// ‖X − B·A‖_F, by row blocks of the residual (about 4 MiB each), computed directly: nothing
    /// cancels but the entries themselves.
    public static func residualNorm(_ x: Matrix<Double>, _ f: LowRankForm) -> Double {
        let block = max(1, (1 << 19) / max(x.cols, 1))
        let ranges = stride(from: 0, to: x.rows, by: block).map { $0..<min($0 + block, x.rows) }
        let parts = (try? Parallel.map(count: ranges.count, worthIt: x.rows * x.cols > 1 << 18) { i -> Double in
            let range = ranges[i]
            let approx = LA.mul(f.b.rows(range), f.a)
            var sum = 0.0
            x.storage.withUnsafeBufferPointer { xs in
                approx.storage.withUnsafeBufferPointer { ys in
                    let base = range.lowerBound * x.cols
                    for e in 0..<ys.count { let d = xs[base + e] - ys[e]; sum += d * d }
                }
            }
            return sum
        }) ?? []  // the body does not throw
        return parts.reduce(0, +).squareRoot()
    }
}
