/// Thin SVD through bidiagonalization: `a = Q·B·Pᵀ` (Golub–Kahan, blocked), `B = U_B Σ V_Bᵀ` by
/// divide and conquer, `u = Q·U_B`, `v = P·V_B` — LAPACK dgesdd's route. Tall inputs (m ≥ 5n/3) are
/// QR-factored first and the n×n triangle is bidiagonalized instead, which halves the reduction's
/// work; then `u = Q_qr · [Q_bd U_B; 0]`, applied in factored form.
///
/// Accuracy (normwise, the usual guarantee of bidiagonalization methods): `a = u Σ vᵀ + E` with
/// ‖E‖ ≲ c·n·u·‖a‖, ‖uᵀu − I‖, ‖vᵀv − I‖ ≲ c·n·u, and every σ_i within c·n·u·‖a‖ of the exact one
/// (tiny singular values are accurate in absolute, not relative, terms).
/// - Complexity: tall (m ≥ 5n/3): 2mn² + 11n³ flops plus 4mn² to form u; square: ≈ 4n³ + 8n³ (u, v),
///   the reductions' matrix–vector half being memory-bound.
enum GolubKahanSVD {
    /// m ≥ n ≥ 1. With `wantV` false, `vt` is left empty (0 × n).
    static func decompose(_ a: Matrix<Double>, wantV: Bool = true) -> SVDResult {
        let m = a.rows, n = a.cols
        precondition(m >= n && n >= 1)
        // Keep entries in a range where squares neither overflow nor underflow; scale by a power of 2.
        var big = 0.0
        for x in a.storage { big = max(big, abs(x)) }
        if big == 0 {
            var u = Matrix<Double>(rows: m, cols: n)
            for i in 0..<n { u[i, i] = 1 }
            return SVDResult(u: u, s: [Double](repeating: 0, count: n), vt: wantV ? .identity(n) : Matrix(rows: 0, cols: n))
        }
        var work = a
        var scale = 1.0
        if big > 0x1p300 || big < 0x1p-300 {
            scale = Double(sign: .plus, exponent: big.exponent, significand: 1)
            for i in work.storage.indices { work.storage[i] /= scale }
        }
        var timer = PhaseTimer("svd \(m)x\(n)")
        let tall = 3 * m >= 5 * n
        let qr = tall ? HouseholderQR(work) : nil
        let square = qr.map { $0.r } ?? work
        timer.mark("qr")
        let bd = Bidiagonalization(square)
        timer.mark("bidiagonalize")
        let f = BidiagonalSVD.decompose(d: bd.d, e: bd.e)
        timer.mark("bidiagonal d&c")
        // Descending order: reverse the ascending columns.
        var ub = Matrix<Double>(rows: bd.m, cols: n)
        for r in 0..<n { for j in 0..<n { ub[r, j] = f.u[r, n - 1 - j] } }
        bd.applyQ(to: &ub)
        timer.mark("apply Q_bd")
        let s = f.s.reversed().map { $0 * scale }
        var u: Matrix<Double>
        if let qr {
            // u = Q_qr · [ub; 0], applied in factored form.
            u = Matrix<Double>(rows: m, cols: n)
            u.storage.replaceSubrange(0..<(n * n), with: ub.storage)
            qr.applyQ(toColumnsOf: &u)
            timer.mark("apply Q_qr")
        } else {
            u = ub
        }
        var vt = Matrix<Double>(rows: 0, cols: n)
        if wantV {
            var vb = Matrix<Double>(rows: n, cols: n)
            for r in 0..<n { for j in 0..<n { vb[r, j] = f.v[r, n - 1 - j] } }
            bd.applyP(to: &vb)
            vt = vb.transposed()
            timer.mark("apply P")
        }
        return SVDResult(u: u, s: s, vt: vt)
    }
}
