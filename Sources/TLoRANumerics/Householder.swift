import CTLoRAKernels

/// One Householder reflector `H = I − τ·v·vᵀ`, `v = (1, x[1...])`, chosen so that `H·x = (β, 0, …, 0)`.
enum Householder {
    /// Overwrites `x[1..<len]` with the reflector's tail and returns `(β, τ)`; `x[0]` is left alone.
    /// τ = 0 (H = I, β = x[0]) when the tail is already zero. The tail's squared norm is summed with
    /// a scaled fallback, so entries far from 1 neither overflow nor underflow.
    static func generate(_ x: UnsafeMutablePointer<Double>, count len: Int) -> (beta: Double, tau: Double) {
        let alpha = x[0]
        guard len > 1 else { return (alpha, 0) }
        var tail2 = tlora_ddot(x + 1, x + 1, len - 1)
        var scale = 1.0
        if !(tail2 > 1e-280 && tail2 < 1e280) {
            // Rare: rescale the tail (and α) by its largest entry before squaring.
            var big = 0.0
            for i in 1..<len { big = max(big, abs(x[i])) }
            if big == 0 { return (alpha, 0) }
            scale = big
            tail2 = 0
            for i in 1..<len { let t = x[i] / big; tail2 += t * t }
        }
        if tail2 == 0 { return (alpha, 0) }
        let a = alpha / scale
        let norm = (a * a + tail2).squareRoot() * scale
        let beta = alpha >= 0 ? -norm : norm
        let tau = (beta - alpha) / beta
        let inv = 1 / (alpha - beta)
        for i in 1..<len { x[i] *= inv }
        return (beta, tau)
    }
}

/// A block of Householder reflectors `H = H_0 ⋯ H_{jb−1} = I − V·T·Vᵀ` in compact-WY form (LAPACK's
/// dlarft, forward and columnwise), built from reflectors stored as rows.
///
/// Reflector `i` lives in row `i` of `vectors` (leading dimension `ld`), as entries of a vector of
/// `length` coordinates: entry `i` is its implicit unit, entries before it are implicit zeros and
/// entries after it are its tail. This covers the layouts of QR (reflector `j` from the diagonal of
/// the transposed work matrix), of the bidiagonal reduction's left and right reflectors and of the
/// tridiagonal reduction (unit one past the diagonal: pass the row pointer plus one).
struct BlockReflector {
    /// V as rows (jb × length): unit diagonal and zeros before it made explicit.
    var vt: [Double]
    /// Upper triangular jb × jb.
    var t: [Double]
    let jb: Int
    let len: Int

    init(vectors w: UnsafePointer<Double>, ld: Int, length: Int, count jb: Int, tau: UnsafePointer<Double>) {
        self.jb = jb
        self.len = length
        var vt = [Double](repeating: 0, count: jb * length)
        for i in 0..<jb where i < length {
            vt[i * length + i] = 1
            let src = w + i * ld
            for c in (i + 1)..<max(length, i + 1) { vt[i * length + c] = src[c] }
        }
        // T: T[i][i] = τ_i, T[0..<i][i] = −τ_i · T[0..<i][0..<i] · (V[:,0..<i]ᵀ v_i); the inner
        // products of all pairs come from one GEMM (VᵀV), the recurrence itself is O(jb³).
        var t = [Double](repeating: 0, count: jb * jb)
        var gram = [Double](repeating: 0, count: jb * jb)
        if jb > 1 && length > 0 {
            vt.withUnsafeBufferPointer { v in
                gram.withUnsafeMutableBufferPointer { g in
                    // Safe: jb > 1 and length > 0, so both buffers are non-empty.
                    GEMM.multiply(transposeB: true, m: jb, n: jb, k: length, a: v.baseAddress!, lda: length, b: v.baseAddress!, ldb: length,
                                  c: g.baseAddress!, ldc: jb)
                }
            }
        }
        for i in 0..<jb {
            t[i * jb + i] = tau[i]
            if i == 0 || tau[i] == 0 || i >= length { continue }
            for p in 0..<i {
                var s = 0.0
                for q in p..<i { s += t[p * jb + q] * gram[q * jb + i] }
                t[p * jb + i] = -tau[i] * s
            }
        }
        self.vt = vt
        self.t = t
    }

    /// Same as `init(vectors:…)` for QR's transposed work matrix `w` (n × m): reflectors j0..<j0+jb.
    init(w: UnsafeMutablePointer<Double>, m: Int, j0: Int, jb: Int, tau: UnsafePointer<Double>) {
        self.init(vectors: w + j0 * m + j0, ld: m, length: m - j0, count: jb, tau: tau)
    }

    /// x ← Hᵀ x = x − V Tᵀ Vᵀ x for each row x of Y (rows are vectors of `len` coordinates); on rows:
    /// Y ← Y − (Y V) T Vᵀ.
    func applyTransposed(to y: UnsafeMutablePointer<Double>, rows: Int, ld: Int) {
        applyToRows(y, rows: rows, ld: ld, transposeT: false)
    }

    /// x ← H x = x − V T Vᵀ x for each row x of Y; on rows: Y ← Y − (Y V) Tᵀ Vᵀ.
    func apply(to y: UnsafeMutablePointer<Double>, rows: Int, ld: Int) {
        applyToRows(y, rows: rows, ld: ld, transposeT: true)
    }

    /// C ← H·C (or Hᵀ·C with `transposed`) for the `len` × `cols` row-major C: every column of C is
    /// one vector. Three GEMMs: W = Vᵀ C, W ← T W (or Tᵀ W), C ← C − V W.
    func applyToColumns(_ c: UnsafeMutablePointer<Double>, cols: Int, ld: Int, transposed: Bool = false) {
        guard cols > 0, jb > 0, len > 0 else { return }
        var w1 = [Double](repeating: 0, count: jb * cols)
        var w2 = [Double](repeating: 0, count: jb * cols)
        vt.withUnsafeBufferPointer { v in
            t.withUnsafeBufferPointer { tt in
                w1.withUnsafeMutableBufferPointer { a in
                    w2.withUnsafeMutableBufferPointer { b in
                        // Safe: all buffers non-empty (jb, cols, len > 0).
                        GEMM.multiply(m: jb, n: cols, k: len, a: v.baseAddress!, lda: len, b: c, ldb: ld, c: a.baseAddress!, ldc: cols)
                        GEMM.multiply(transposeA: transposed, m: jb, n: cols, k: jb, a: tt.baseAddress!, lda: jb, b: a.baseAddress!, ldb: cols,
                                      c: b.baseAddress!, ldc: cols)
                        GEMM.multiply(transposeA: true, m: len, n: cols, k: jb, alpha: -1, a: v.baseAddress!, lda: len, b: b.baseAddress!, ldb: cols,
                                      beta: 1, c: c, ldc: ld)
                    }
                }
            }
        }
    }

    private func applyToRows(_ y: UnsafeMutablePointer<Double>, rows: Int, ld: Int, transposeT: Bool) {
        guard rows > 0, jb > 0, len > 0 else { return }
        var yv = [Double](repeating: 0, count: rows * jb)
        var yvt = [Double](repeating: 0, count: rows * jb)
        vt.withUnsafeBufferPointer { v in
            yv.withUnsafeMutableBufferPointer { a in
                yvt.withUnsafeMutableBufferPointer { b in
                    t.withUnsafeBufferPointer { tt in
                        // Safe: every buffer here is non-empty (rows, jb, len > 0).
                        GEMM.multiply(transposeB: true, m: rows, n: jb, k: len, a: y, lda: ld, b: v.baseAddress!, ldb: len, c: a.baseAddress!, ldc: jb)
                        GEMM.multiply(transposeB: transposeT, m: rows, n: jb, k: jb, a: a.baseAddress!, lda: jb, b: tt.baseAddress!, ldb: jb, c: b.baseAddress!, ldc: jb)
                        GEMM.multiply(m: rows, n: len, k: jb, alpha: -1, a: b.baseAddress!, lda: jb, b: v.baseAddress!, ldb: len, beta: 1, c: y, ldc: ld)
                    }
                }
            }
        }
    }
}
