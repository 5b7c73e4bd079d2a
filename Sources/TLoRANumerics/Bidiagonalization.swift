import CTLoRAKernels

/// Golub–Kahan bidiagonalization of an m×n matrix with m ≥ n: `a = Q · B · Pᵀ`, `B` upper
/// bidiagonal (diagonal `d`, superdiagonal `e`), `Q = H_0 ⋯ H_{n−1}` and `P = G_0 ⋯ G_{n−2}` products
/// of Householder reflectors (H_i acts on coordinates i..<m, G_i on i+1..<n).
///
/// Blocked like LAPACK's dgebrd/dlabrd: inside a panel of `nb` columns every reflector pair needs
/// two matrix–vector products with the whole trailing matrix (the memory-bound half of the work),
/// while the trailing matrix itself is updated once per panel with one GEMM,
/// `A ← A − [U X]·[Y V]ᵀ` (k = 2nb). Backward stable: `Q B Pᵀ = a + E` with ‖E‖ ≤ c·n·u·‖a‖.
/// - Complexity: 4mn² − 4n³/3 flops, half of them in matrix–vector products.
struct Bidiagonalization {
    let m: Int
    let n: Int
    var d: [Double]
    var e: [Double]
    /// n × m: row i holds H_i's vector tail at columns i+1..<m (unit at i implicit).
    var left: [Double]
    var tauQ: [Double]
    /// m × n (the reduced matrix): row i holds G_i's vector tail at columns i+2..<n (unit at i+1).
    var right: [Double]
    var tauP: [Double]

    static let panel = 32
    /// Reflectors per compact-WY block when applying Q or P (a good GEMM shape, see HouseholderQR).
    static let block = 128

    init(_ a: Matrix<Double>) {
        m = a.rows
        n = a.cols
        precondition(m >= n && n >= 1, "bidiagonalization needs m ≥ n ≥ 1")
        d = [Double](repeating: 0, count: n)
        e = [Double](repeating: 0, count: max(n - 1, 0))
        left = [Double](repeating: 0, count: n * m)
        tauQ = [Double](repeating: 0, count: n)
        right = a.storage
        tauP = [Double](repeating: 0, count: n)
        let nb = Self.panel, w = 2 * nb
        let (m, n) = (self.m, self.n)
        // L = [U X] (m × 2nb), R = [Y V] (n × 2nb): the panel's reflectors and their products.
        var lbuf = [Double](repeating: 0, count: m * w)
        var rbuf = [Double](repeating: 0, count: n * w)
        var u = [Double](repeating: 0, count: m), v = [Double](repeating: 0, count: n)
        var g = [Double](repeating: 0, count: max(m, n)), h = [Double](repeating: 0, count: max(m, n))
        var small = [Double](repeating: 0, count: w)
        d.withUnsafeMutableBufferPointer { dp in
        e.withUnsafeMutableBufferPointer { ep in
        left.withUnsafeMutableBufferPointer { lp in
        tauQ.withUnsafeMutableBufferPointer { tq in
        right.withUnsafeMutableBufferPointer { ap in
        tauP.withUnsafeMutableBufferPointer { tp in
        lbuf.withUnsafeMutableBufferPointer { lb in
        rbuf.withUnsafeMutableBufferPointer { rb in
        u.withUnsafeMutableBufferPointer { up in
        v.withUnsafeMutableBufferPointer { vp in
        g.withUnsafeMutableBufferPointer { gp in
        h.withUnsafeMutableBufferPointer { hp in
        small.withUnsafeMutableBufferPointer { sp in
            // Safe: m, n ≥ 1, so every buffer is non-empty.
            let A = ap.baseAddress!, L = lb.baseAddress!, R = rb.baseAddress!
            let U = up.baseAddress!, V = vp.baseAddress!, G = gp.baseAddress!, H = hp.baseAddress!, S = sp.baseAddress!
            var p = 0
            while p < n {
                let jb = min(nb, n - p)
                for i in 0..<(m * w) { L[i] = 0 }
                for i in 0..<(n * w) { R[i] = 0 }
                for l in 0..<jb {
                    let i = p + l
                    // (a) Column i, rows i..<m, brought up to date: a −= [U X]·[Y V](i, :)ᵀ.
                    let rows = m - i
                    if l > 0 {
                        tlora_dgemv_n(rows, w, L + i * w, w, R + i * w, G)
                        for r in 0..<rows { A[(i + r) * n + i] -= G[r] }
                    }
                    // (b) Left reflector H_i annihilates a[i+1..<m, i].
                    for r in 0..<rows { U[r] = A[(i + r) * n + i] }
                    let (beta, tau) = Householder.generate(U, count: rows)
                    U[0] = 1
                    dp[i] = beta
                    tq[i] = tau
                    for r in 1..<max(rows, 1) { lp[i * m + i + r] = U[r] }
                    for r in 0..<rows { L[(i + r) * w + l] = U[r] }
                    if i == n - 1 { break }
                    let cols = n - i - 1
                    // (c) y_i = τ·(A_trailingᵀ u − Y (Uᵀu) − V (Xᵀu)) over columns i+1..<n.
                    if tau != 0 {
                        tlora_dgemv_t(rows, cols, A + i * n + i + 1, n, U, G)
                        tlora_dgemv_t(rows, w, L + i * w, w, U, S)
                        S[l] = 0  // Y's column l is still zero; keep the product clean
                        tlora_dgemv_n(cols, w, R + (i + 1) * w, w, S, H)
                        for c in 0..<cols { R[(i + 1 + c) * w + l] = tau * (G[c] - H[c]) }
                    }
                    // (d) Row i, columns i+1..<n, brought up to date: a −= [Y V]·[U X](i, :)ᵀ.
                    tlora_dgemv_n(cols, w, R + (i + 1) * w, w, L + i * w, G)
                    for c in 0..<cols { A[i * n + i + 1 + c] -= G[c] }
                    // (e) Right reflector G_i annihilates a[i, i+2..<n].
                    for c in 0..<cols { V[c] = A[i * n + i + 1 + c] }
                    let (betaP, tauPi) = Householder.generate(V, count: cols)
                    V[0] = 1
                    ep[i] = betaP
                    tp[i] = tauPi
                    for c in 1..<max(cols, 1) { A[i * n + i + 1 + c] = V[c] }
                    for c in 0..<cols { R[(i + 1 + c) * w + nb + l] = V[c] }
                    // (f) x_i = τ·(A_trailing v − U (Yᵀv) − X (Vᵀv)) over rows i+1..<m.
                    if tauPi != 0 && rows > 1 {
                        tlora_dgemv_n(rows - 1, cols, A + (i + 1) * n + i + 1, n, V, G)
                        tlora_dgemv_t(cols, w, R + (i + 1) * w, w, V, S)
                        S[nb + l] = 0  // X's column l is still zero
                        tlora_dgemv_n(rows - 1, w, L + (i + 1) * w, w, S, H)
                        for r in 0..<(rows - 1) { L[(i + 1 + r) * w + nb + l] = tauPi * (G[r] - H[r]) }
                    }
                }
                // Trailing update with the whole panel: A ← A − [U X]·[Y V]ᵀ.
                let q = p + jb
                if q < n {
                    GEMM.multiply(transposeB: true, m: m - q, n: n - q, k: w, alpha: -1, a: L + q * w, lda: w, b: R + q * w, ldb: w,
                                  beta: 1, c: A + q * n + q, ldc: n)
                }
                p = q
            }
        }}}}}}}}}}}}}
    }

    /// C ← Q·C for the m × cols row-major C (columns are vectors in the row space of `a`).
    func applyQ(to c: inout Matrix<Double>) {
        precondition(c.rows == m)
        let nb = Self.block
        left.withUnsafeBufferPointer { lp in
            tauQ.withUnsafeBufferPointer { tq in
                c.storage.withUnsafeMutableBufferPointer { cp in
                    guard let C = cp.baseAddress else { return }
                    for j0 in stride(from: (n - 1) / nb * nb, through: 0, by: -nb) {
                        let jb = min(nb, n - j0)
                        // Safe: n ≥ 1, so left and tauQ are non-empty.
                        let block = BlockReflector(vectors: lp.baseAddress! + j0 * m + j0, ld: m, length: m - j0, count: jb, tau: tq.baseAddress! + j0)
                        block.applyToColumns(C + j0 * c.cols, cols: c.cols, ld: c.cols)
                    }
                }
            }
        }
    }

    /// C ← P·C for the n × cols row-major C.
    func applyP(to c: inout Matrix<Double>) {
        precondition(c.rows == n)
        guard n > 2 else { return }  // G_0 … G_{n−2} are all identities when n ≤ 2
        let nb = Self.block
        let count = n - 2  // reflectors 0..<n−2 can be nontrivial (G_{n−2} acts on one coordinate)
        right.withUnsafeBufferPointer { ap in
            tauP.withUnsafeBufferPointer { tp in
                c.storage.withUnsafeMutableBufferPointer { cp in
                    guard let C = cp.baseAddress else { return }
                    for j0 in stride(from: (count - 1) / nb * nb, through: 0, by: -nb) {
                        let jb = min(nb, count - j0)
                        // Safe: n > 2.
                        let block = BlockReflector(vectors: ap.baseAddress! + j0 * n + j0 + 1, ld: n, length: n - j0 - 1, count: jb, tau: tp.baseAddress! + j0)
                        block.applyToColumns(C + (j0 + 1) * c.cols, cols: c.cols, ld: c.cols)
                    }
                }
            }
        }
    }
}
