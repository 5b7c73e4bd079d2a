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
        let rb = stackedR(x.b, y.b, sx, -sy)
        let ra = stackedR(x.a.transposed(), y.a.transposed(), 1, 1)
        return frobenius(LA.mul(rb, ra, tb: true).storage)
    }

    /// The triangular factor of [s·P, t·Q] (both m×k) in a basis with orthonormal columns, from two
    /// thin QRs instead of one twice as wide: P = Q_p R_p; Q = Q_p C + D with C = Q_pᵀ Q; D = Q_d R_d;
    /// so [sP, tQ] = [Q_p, Q_d] · [[s R_p, t C], [0, t R_d]].
    static func stackedR(_ p: Matrix<Double>, _ q: Matrix<Double>, _ s: Double, _ t: Double) -> Matrix<Double> {
        let kp = p.cols, kq = q.cols
        if p.rows <= kp + kq {
            var m = Matrix<Double>(rows: p.rows, cols: kp + kq)
            for i in 0..<p.rows {
                for j in 0..<kp { m[i, j] = s * p[i, j] }
                for j in 0..<kq { m[i, kp + j] = t * q[i, j] }
            }
            return m  // no smaller triangle to gain: the matrix itself serves
        }
        let (qp, rp) = LA.qr(p)
        let c = LA.mul(qp, q, ta: true)
        var d = q
        let proj = LA.mul(qp, c)
        for i in d.storage.indices { d.storage[i] -= proj.storage[i] }
        let rd = LA.qr(d).r
        let k1 = rp.rows, k2 = rd.rows
        var r = Matrix<Double>(rows: k1 + k2, cols: kp + kq)
        for i in 0..<k1 {
            for j in 0..<kp { r[i, j] = s * rp[i, j] }
            for j in 0..<kq { r[i, kp + j] = t * c[i, j] }
        }
        for i in 0..<k2 { for j in 0..<kq { r[k1 + i, kp + j] = t * rd[i, j] } }
        return r
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

    /// sqrt(Σ x²), without overflow or underflow (TLoRANumerics' norm: one fast pass, a scaled one
    /// only when the first leaves the safe range).
    public static func frobenius(_ values: [Double]) -> Double {
        frobeniusNorm(values)
    }
}
