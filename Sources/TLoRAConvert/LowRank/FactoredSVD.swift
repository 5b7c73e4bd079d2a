import TLoRANumerics

/// The SVD of `B · A` from its factors: `B = Q_b R_b`, `Aᵀ = Q_a R_a`, `R_b R_aᵀ = U' S V'ᵀ`, so
/// `B · A = (Q_b U') S (Q_a V')ᵀ`. Costs two thin QRs and a k×k SVD instead of an out × in SVD; the
/// singular values are those of `B · A` to working precision.
public struct FactoredSVD: Sendable {
    /// `out × k`, orthonormal columns.
    public var u: Matrix<Double>
    /// Descending.
    public var s: [Double]
    /// `k × in`, orthonormal rows.
    public var vt: Matrix<Double>

    public init(_ f: LowRankForm) {
        let (qb, rb) = LA.qr(f.b)
        let (qa, ra) = LA.qr(f.a.transposed())
        let core = LA.mul(rb, ra, tb: true)
        let (u1, s, v1t) = LA.svd(core)
        u = LA.mul(qb, u1)
        self.s = s
        vt = LA.mul(v1t, qa, tb: true)
    }

    /// ‖B · A‖_F.
    public var frobeniusNorm: Double { s.reduce(0) { $0 + $1 * $1 }.squareRoot() }
}

/// Rank selection from singular values.
public enum Truncation {
    /// The smallest rank `k` (≥ 1 when any value is nonzero, ≤ `maxRank`) whose discarded tail
    /// `sqrt(Σ_{i ≥ k} s_i²)` is at most `tolerance`; returns the rank and that tail.
    public static func rank(singularValues s: [Double], tolerance: Double, maxRank: Int = Int.max) -> (rank: Int, tail: Double) {
        let (k, tail) = truncationRank(singularValues: s, tolerance: tolerance, maxRank: maxRank)
        if k == 0, !s.isEmpty {
            // Keep one direction: a rank-0 factor is not a valid tensor, and a nonzero update must not
            // vanish silently. Its tail is the rest (0 for an all-zero update).
            return (1, s.dropFirst().reduce(0) { $0 + $1 * $1 }.squareRoot())
        }
        return (k, tail)
    }
}
