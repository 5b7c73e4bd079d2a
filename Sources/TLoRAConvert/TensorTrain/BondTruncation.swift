import TLoRANumerics

/// The truncation of one TT bond: `m ≈ u · rest` with `u` orthonormal columns spanning the kept
/// dominant left directions of `m`, and the discarded tail.
///
/// Large bonds with a loose tolerance (E = 1e-3 of a 4096×4096 update: 256×256 unfoldings) go
/// through the Gram matrix of the smaller side and `symmetricEigen`, about half the cost of an SVD.
/// Its eigenvalues are σ² to within `c·n·u·‖m‖²` each, so the Gram route is taken only when the
/// tolerance exceeds ten times the worst sum of those errors over all n discarded values
/// (`tolerance² ≥ 100 · budget`, `budget = 8 n² u ‖m‖_F²`), and the budget is taken off the
/// tolerance before choosing the rank: the discarded tail stays within `tolerance`. Tight
/// tolerances and small bonds use the SVD. The converters measure the stored result afterwards
/// either way.
enum BondTruncation {
    /// Bonds smaller than this always use the SVD (it is cheap there).
    static let gramMinimum = 64

    static func truncate(_ m: Matrix<Double>, tolerance: Double, maxRank: Int) -> (u: Matrix<Double>, rest: Matrix<Double>, tail: Double) {
        let n = min(m.rows, m.cols)
        let norm2 = m.storage.reduce(0) { $0 + $1 * $1 }
        let budget = gramBudget(n: n, norm2: norm2)
        guard takesGramRoute(n: n, tolerance: tolerance, norm2: norm2) else {
            let (u, s, svt) = LA.leftSVD(m)
            let (keep, tail) = Truncation.rank(singularValues: s, tolerance: tolerance, maxRank: maxRank)
            return (u.columns(0..<keep), svt.rows(0..<keep), tail)
        }
        let wide = m.rows <= m.cols
        // Gram of the smaller side: m mᵀ (left vectors directly) or mᵀ m (right vectors).
        let eigen = symmetricEigen(wide ? LA.mul(m, m, tb: true) : LA.mul(m, m, ta: true))
        let order = Array(eigen.values.indices.reversed())  // descending
        let sigma = order.map { max(eigen.values[$0], 0).squareRoot() }
        let (keep, tail) = Truncation.rank(singularValues: sigma, tolerance: (tolerance * tolerance - budget).squareRoot(), maxRank: maxRank)
        var v = Matrix<Double>(rows: n, cols: keep)
        for i in 0..<n { for j in 0..<keep { v[i, j] = eigen.vectors[i, order[j]] } }
        if wide {
            return (v, LA.mul(v, m, ta: true), tail)
        }
        // m ≈ (m v) vᵀ; orthonormalize m v = q r, so m ≈ q · (r vᵀ).
        let (q, r) = LA.qr(LA.mul(m, v))
        return (q, LA.mul(r, v, tb: true), tail)
    }

    /// The worst total error of n eigenvalues of a Gram matrix of Frobenius norm² `norm2`.
    static func gramBudget(n: Int, norm2: Double) -> Double { 8 * Double(n) * Double(n) * Double.ulpOfOne * norm2 }

    static func takesGramRoute(n: Int, tolerance: Double, norm2: Double) -> Bool {
        n >= gramMinimum && tolerance * tolerance >= 100 * gramBudget(n: n, norm2: norm2)
    }
}
