import TLoRANumerics

/// Frobenius norms of updates and of their differences, computed from factors.
///
/// `X − Y = [B_x, −B_y] · [A_x; A_y]`, so `‖X − Y‖_F = ‖R_b R_aᵀ‖_F` with `[B_x, −B_y] = Q_b R_b`
/// and `[A_x; A_y]ᵀ = Q_a R_a`. No dense matrix is formed and, unlike `‖X‖² + ‖Y‖² − 2⟨X, Y⟩`,
/// nothing cancels: a relative error of 1e-12 is measured as accurately as one of 0.3.
public enum ErrorMeasure {
    /// ‖sx · X − sy · Y‖_F.
    public static func differenceNorm(_ x: LowRankForm, scale sx: Double, _ y: LowRankForm, scale sy: Double) -> Double {
        precondition(x.b.rows == y.b.rows && x.a.cols == y.a.cols, "shapes differ")
        let kx = x.rank, ky = y.rank
        var b = Matrix<Double>(rows: x.b.rows, cols: kx + ky)
        for i in 0..<b.rows {
            for j in 0..<kx { b[i, j] = sx * x.b[i, j] }
            for j in 0..<ky { b[i, kx + j] = -sy * y.b[i, j] }
        }
        var at = Matrix<Double>(rows: x.a.cols, cols: kx + ky)
        for i in 0..<at.rows {
            for j in 0..<kx { at[i, j] = x.a[j, i] }
            for j in 0..<ky { at[i, kx + j] = y.a[j, i] }
        }
        return smallProductNorm(b, at)
    }

    /// ‖s · X‖_F.
    public static func norm(_ x: LowRankForm, scale s: Double) -> Double {
        abs(s) * smallProductNorm(x.b, x.a.transposed())
    }

    /// ‖B · Cᵀ‖_F via the triangular factors of thin QRs of `B` and `C`.
    static func smallProductNorm(_ b: Matrix<Double>, _ c: Matrix<Double>) -> Double {
        let rb = b.rows >= b.cols ? LA.qr(b).r : b
        let rc = c.rows >= c.cols ? LA.qr(c).r : c
        let m = LA.mul(rb, rc, tb: true)
        return frobenius(m.storage)
    }

    /// sqrt(Σ x²), scaled to avoid overflow and underflow.
    public static func frobenius(_ values: [Double]) -> Double {
        var scale = 0.0, sum = 1.0
        for v in values where v != 0 {
            let a = abs(v)
            if scale < a {
                sum = 1 + sum * (scale / a) * (scale / a)
                scale = a
            } else {
                sum += (a / scale) * (a / scale)
            }
        }
        return scale * sum.squareRoot()
    }
}
