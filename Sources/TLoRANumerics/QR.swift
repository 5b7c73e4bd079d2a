import CTLoRAKernels

/// Thin Householder QR of an m×n matrix: `a = q · r` with `q` m×k (orthonormal columns) and `r`
/// k×n upper triangular, k = min(m, n).
///
/// Blocked (panels of 32 reflectors, applied to the rest with compact-WY GEMMs, LAPACK's
/// dgeqrf/dorgqr scheme). The work happens on the transpose so every column of `a` is a contiguous
/// row. Backward stable: ‖a − q·r‖ ≤ c·m·n·u·‖a‖ and ‖qᵀq − I‖ ≤ c·m·n·u (u = 2⁻⁵³).
/// - Complexity: 2mn² − ⅔n³ flops for R, as many again for Q.
public func householderQR(_ a: Matrix<Double>) -> (q: Matrix<Double>, r: Matrix<Double>) {
    let m = a.rows, n = a.cols, k = min(m, n)
    var w = a.transposed()  // n × m: row j is column j of a
    var tau = [Double](repeating: 0, count: k)
    let nb = 32
    w.storage.withUnsafeMutableBufferPointer { wp in
        tau.withUnsafeMutableBufferPointer { tp in
            let W = wp.baseAddress!  // safe: n, m > 0 when k > 0; loops below do not run otherwise
            var j0 = 0
            while j0 < k {
                let jb = min(nb, k - j0)
                // Panel: reflectors j0..<j0+jb, each applied at once to the rest of the panel.
                for j in j0..<(j0 + jb) {
                    let x = W + j * m + j
                    let len = m - j
                    let alpha = x[0]
                    let tail2 = len > 1 ? tlora_ddot(x + 1, x + 1, len - 1) : 0
                    if tail2 == 0 {
                        tp[j] = 0  // already triangular in this column: H = I
                    } else {
                        let norm = (alpha * alpha + tail2).squareRoot()
                        let beta = alpha >= 0 ? -norm : norm
                        tp[j] = (beta - alpha) / beta
                        let scale = 1 / (alpha - beta)
                        for i in 1..<len { x[i] *= scale }
                        x[0] = beta
                    }
                    // Apply H_j to panel columns j+1..<j0+jb: y ← y − τ (v·y) v with v = (1, x[1...]).
                    if tp[j] != 0 {
                        for c in (j + 1)..<(j0 + jb) {
                            let y = W + c * m + j
                            let d = y[0] + (len > 1 ? tlora_ddot(x + 1, y + 1, len - 1) : 0)
                            let f = -tp[j] * d
                            y[0] += f
                            if len > 1 { tlora_daxpy(f, x + 1, y + 1, len - 1) }
                        }
                    }
                }
                let trailing = n - (j0 + jb)
                if trailing > 0 {
                    let block = BlockReflector(w: W, m: m, j0: j0, jb: jb, tau: tp.baseAddress! + j0)
                    // Columns of a right of the panel (rows of w): W_t ← W_t (I − V Tᵀ Vᵀ)ᵀ… i.e. A_t ← Hᵀ A_t.
                    block.applyTransposed(to: W + (j0 + jb) * m + j0, rows: trailing, ld: m)
                }
                j0 += jb
            }
        }
    }
    // R: entries on and above the diagonal, r[i][j] = a-column j's entry i = w[j][i].
    var r = Matrix<Double>(rows: k, cols: n)
    for i in 0..<k { for j in i..<n { r[i, j] = w[j, i] } }
    // Thin Q = H_1 ⋯ H_k [I_k; 0], accumulated backwards on its transpose (rows = columns of Q).
    var qt = Matrix<Double>(rows: k, cols: m)
    for i in 0..<k { qt[i, i] = 1 }
    w.storage.withUnsafeMutableBufferPointer { wp in
        tau.withUnsafeMutableBufferPointer { tp in
            qt.storage.withUnsafeMutableBufferPointer { qp in
                var starts: [Int] = []
                var j0 = 0
                while j0 < k { starts.append(j0); j0 += nb }
                for j0 in starts.reversed() {
                    let jb = min(nb, k - j0)
                    let block = BlockReflector(w: wp.baseAddress!, m: m, j0: j0, jb: jb, tau: tp.baseAddress! + j0)  // safe: k > 0
                    // Columns j0..<k of Q (rows of qt), entries j0..<m: Q_sub ← H Q_sub.
                    block.apply(to: qp.baseAddress! + j0 * m + j0, rows: k - j0, ld: m)
                }
            }
        }
    }
    return (qt.transposed(), r)
}

/// A panel of Householder reflectors H = H_1 ⋯ H_jb = I − V T Vᵀ in compact-WY form (LAPACK dlarft),
/// with V's columns stored below the diagonal of rows j0..<j0+jb of the transposed work matrix.
struct BlockReflector {
    /// V as rows (jb × len), unit diagonal and zeros above made explicit.
    var vt: [Double]
    /// Upper triangular jb × jb.
    var t: [Double]
    let jb: Int
    let len: Int

    init(w: UnsafeMutablePointer<Double>, m: Int, j0: Int, jb: Int, tau: UnsafePointer<Double>) {
        self.jb = jb
        let len = m - j0
        self.len = len
        var vt = [Double](repeating: 0, count: jb * len)
        for i in 0..<jb {
            vt[i * len + i] = 1
            let src = w + (j0 + i) * m + j0
            for c in (i + 1)..<max(len, i + 1) { vt[i * len + c] = src[c] }
        }
        // T: T[i][i] = τ_i, T[0..<i][i] = −τ_i · T[0..<i][0..<i] · (V[:,0..<i]ᵀ v_i).
        var t = [Double](repeating: 0, count: jb * jb)
        vt.withUnsafeBufferPointer { v in
            for i in 0..<jb {
                t[i * jb + i] = tau[i]
                if i == 0 || tau[i] == 0 { continue }
                var z = [Double](repeating: 0, count: i)
                for p in 0..<i { z[p] = tlora_ddot(v.baseAddress! + p * len + i, v.baseAddress! + i * len + i, len - i) }  // safe: non-empty
                for p in 0..<i {
                    var s = 0.0
                    for q in p..<i { s += t[p * jb + q] * z[q] }
                    t[p * jb + i] = -tau[i] * s
                }
            }
        }
        self.vt = vt
        self.t = t
    }

    /// x ← Hᵀ x = x − V Tᵀ Vᵀ x for each row x of Y (rows are the matrix's columns, `len` long from
    /// the panel's diagonal); on rows: Y ← Y − (Y V) T Vᵀ.
    func applyTransposed(to y: UnsafeMutablePointer<Double>, rows: Int, ld: Int) {
        apply(to: y, rows: rows, ld: ld, transposeT: false)
    }

    /// x ← H x = x − V T Vᵀ x for each row x of Y; on rows: Y ← Y − (Y V) Tᵀ Vᵀ.
    func apply(to y: UnsafeMutablePointer<Double>, rows: Int, ld: Int) {
        apply(to: y, rows: rows, ld: ld, transposeT: true)
    }

    private func apply(to y: UnsafeMutablePointer<Double>, rows: Int, ld: Int, transposeT: Bool) {
        guard rows > 0, jb > 0 else { return }
        var yv = [Double](repeating: 0, count: rows * jb)
        var yvt = [Double](repeating: 0, count: rows * jb)
        vt.withUnsafeBufferPointer { v in
            yv.withUnsafeMutableBufferPointer { a in
                yvt.withUnsafeMutableBufferPointer { b in
                    t.withUnsafeBufferPointer { tt in
                        // Safe: every buffer here is non-empty (rows, jb, len > 0).
                        // YV = Y · Vᵀᵀ  (rows × jb)
                        GEMM.multiply(transposeB: true, m: rows, n: jb, k: len, a: y, lda: ld, b: v.baseAddress!, ldb: len, c: a.baseAddress!, ldc: jb)
                        // (YV) · T or · Tᵀ  (rows × jb)
                        GEMM.multiply(transposeB: transposeT, m: rows, n: jb, k: jb, a: a.baseAddress!, lda: jb, b: tt.baseAddress!, ldb: jb, c: b.baseAddress!, ldc: jb)
                        // Y −= (·) · Vᵀ  (rows × len)
                        GEMM.multiply(m: rows, n: len, k: jb, alpha: -1, a: b.baseAddress!, lda: jb, b: v.baseAddress!, ldb: len, beta: 1, c: y, ldc: ld)
                    }
                }
            }
        }
    }
}
