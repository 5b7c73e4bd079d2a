import CTLoRAKernels

/// Householder tridiagonalization of a symmetric n×n matrix: `a = Q · T · Qᵀ`, `T` symmetric
/// tridiagonal (diagonal `d`, off-diagonal `e`), `Q = H_0 ⋯ H_{n−2}` with H_i acting on i+1..<n.
///
/// Blocked like LAPACK's dsytrd/dlatrd (lower form): inside a panel of `nb` columns each reflector
/// needs one symmetric matrix–vector product with the trailing matrix (reading only its lower
/// triangle — the memory-bound half), and the trailing matrix's lower triangle is updated once per
/// panel by the rank-2nb correction `A ← A − V Wᵀ − W Vᵀ` (GEMMs on column blocks). Backward
/// stable: `Q T Qᵀ = a + E`, ‖E‖ ≤ c·n·u·‖a‖.
/// - Complexity: 4n³/3 flops, half of them in the matrix–vector products.
struct Tridiagonalization {
    let n: Int
    var d: [Double]
    var e: [Double]
    /// n × n: row i holds H_i's vector tail at columns i+2..<n (unit at i+1).
    var reflectors: [Double]
    var tau: [Double]

    static let panel = 32
    static let block = 128

    /// `a` must be symmetric; only its lower triangle is read.
    init(_ a: Matrix<Double>) {
        n = a.rows
        precondition(a.cols == n && n >= 1)
        d = [Double](repeating: 0, count: n)
        e = [Double](repeating: 0, count: max(n - 1, 0))
        tau = [Double](repeating: 0, count: n)
        reflectors = a.storage
        let nb = Self.panel, w = 2 * nb
        let n = self.n
        // L = [V W] and R = [W V] (n × 2nb): the panel's reflectors and their products, in both
        // orders so that V Wᵀ + W Vᵀ = L Rᵀ.
        var lbuf = [Double](repeating: 0, count: n * w)
        var rbuf = [Double](repeating: 0, count: n * w)
        var v = [Double](repeating: 0, count: n), y = [Double](repeating: 0, count: n), corr = [Double](repeating: 0, count: n)
        var small = [Double](repeating: 0, count: w)
        d.withUnsafeMutableBufferPointer { dp in
        e.withUnsafeMutableBufferPointer { ep in
        tau.withUnsafeMutableBufferPointer { tp in
        reflectors.withUnsafeMutableBufferPointer { ap in
        lbuf.withUnsafeMutableBufferPointer { lb in
        rbuf.withUnsafeMutableBufferPointer { rb in
        v.withUnsafeMutableBufferPointer { vp in
        y.withUnsafeMutableBufferPointer { yp in
        corr.withUnsafeMutableBufferPointer { cp in
        small.withUnsafeMutableBufferPointer { sp in
            // Safe: n ≥ 1, every buffer is non-empty.
            let A = ap.baseAddress!, L = lb.baseAddress!, R = rb.baseAddress!
            let V = vp.baseAddress!, Y = yp.baseAddress!, C = cp.baseAddress!, S = sp.baseAddress!
            var p = 0
            while p < n {
                let jb = min(nb, n - p)
                for i in 0..<(n * w) { L[i] = 0; R[i] = 0 }
                for l in 0..<jb {
                    let i = p + l
                    // (a) Column i, entries i..<n of the lower triangle, brought up to date:
                    // a −= L R(i, :)ᵀ.
                    if l > 0 {
                        tlora_dgemv_n(n - i, w, L + i * w, w, R + i * w, C)
                        for c in 0..<(n - i) { A[(i + c) * n + i] -= C[c] }
                    }
                    dp[i] = A[i * n + i]
                    if i == n - 1 { break }
                    // (b) Reflector annihilating a[i+2..<n, i]; its tail is stored in row i (the
                    // upper triangle, which nothing reads any more).
                    let len = n - i - 1
                    for c in 0..<len { V[c] = A[(i + 1 + c) * n + i] }
                    let (beta, t) = Householder.generate(V, count: len)
                    V[0] = 1
                    ep[i] = beta
                    tp[i] = t
                    for c in 1..<max(len, 1) { A[i * n + i + 1 + c] = V[c] }
                    for c in 0..<len {
                        L[(i + 1 + c) * w + l] = V[c]
                        R[(i + 1 + c) * w + nb + l] = V[c]
                    }
                    // (c) w_i = τ·(A v − V (Wᵀv) − W (Vᵀv)), then w_i −= ½τ(w_iᵀv)·v.
                    if t != 0 {
                        tlora_dsymv_lower(len, A + (i + 1) * n + i + 1, n, V, Y)
                        tlora_dgemv_t(len, w, R + (i + 1) * w, w, V, S)
                        S[nb + l] = 0  // W's column l is still zero
                        tlora_dgemv_n(len, w, L + (i + 1) * w, w, S, C)
                        var dot = 0.0
                        for c in 0..<len { Y[c] = t * (Y[c] - C[c]); dot += Y[c] * V[c] }
                        let alpha = -0.5 * t * dot
                        for c in 0..<len {
                            let wc = Y[c] + alpha * V[c]
                            L[(i + 1 + c) * w + nb + l] = wc
                            R[(i + 1 + c) * w + l] = wc
                        }
                    }
                }
                // Trailing update of the lower triangle only (column blocks from the diagonal
                // down): half the flops of the full square.
                let q = p + jb
                var c0 = q
                while c0 < n {
                    let width = min(Self.block, n - c0)
                    GEMM.multiply(transposeB: true, m: n - c0, n: width, k: w, alpha: -1, a: L + c0 * w, lda: w, b: R + c0 * w, ldb: w,
                                  beta: 1, c: A + c0 * n + c0, ldc: n)
                    c0 += width
                }
                p = q
            }
        }}}}}}}}}}
    }

    /// C ← Q·C for the n × cols row-major C.
    func applyQ(to c: inout Matrix<Double>) {
        precondition(c.rows == n)
        guard n > 2 else { return }  // H_{n−2} acts on one coordinate: all identities when n ≤ 2
        let nb = Self.block
        let count = n - 2
        reflectors.withUnsafeBufferPointer { ap in
            tau.withUnsafeBufferPointer { tp in
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
