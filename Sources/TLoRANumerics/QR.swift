import CTLoRAKernels

/// Thin Householder QR of an m×n matrix: `a = q · r` with `q` m×k (orthonormal columns) and `r`
/// k×n upper triangular, k = min(m, n).
///
/// Blocked (panels of reflectors, applied to the rest with compact-WY GEMMs, LAPACK's
/// dgeqrf/dorgqr scheme). The work happens on the transpose so every column of `a` is a contiguous
/// row. Backward stable: ‖a − q·r‖ ≤ c·m·n·u·‖a‖ and ‖qᵀq − I‖ ≤ c·m·n·u (u = 2⁻⁵³).
/// - Complexity: 2mn² − ⅔n³ flops for R, as many again for Q.
public func householderQR(_ a: Matrix<Double>) -> (q: Matrix<Double>, r: Matrix<Double>) {
    let f = HouseholderQR(a)
    return (f.q, f.r)
}

/// The factored form of a Householder QR: `a = H_0 ⋯ H_{k−1} · [r; 0]`, reflectors kept so that Q
/// can be applied without being formed (the SVD pushes its small left vectors through it).
struct HouseholderQR {
    let m: Int
    let n: Int
    var k: Int { min(m, n) }
    /// n × m, the transpose of the reduced matrix: row j holds r's column j in its first j+1
    /// entries and H_j's vector tail after its diagonal.
    var w: Matrix<Double>
    var tau: [Double]

    /// Reflectors factored at a time with level-1 kernels.
    static let panel = 32
    /// Reflectors per compact-WY block for the trailing updates and for applying Q: wide enough
    /// that the GEMMs have a good shape (k or m = 128 rather than 32).
    static let block = 128

    init(_ a: Matrix<Double>) {
        m = a.rows
        n = a.cols
        let k = min(m, n)
        w = a.transposed()  // n × m: row j is column j of a
        tau = [Double](repeating: 0, count: k)
        let (m, n) = (self.m, self.n)
        w.storage.withUnsafeMutableBufferPointer { wp in
            tau.withUnsafeMutableBufferPointer { tp in
                guard k > 0 else { return }
                let W = wp.baseAddress!, T = tp.baseAddress!  // safe: n, m > 0 when k > 0
                var j0 = 0
                while j0 < k {
                    let outer = min(Self.block, k - j0)
                    var p0 = j0
                    while p0 < j0 + outer {
                        let jb = min(Self.panel, j0 + outer - p0)
                        Self.factorPanel(W, m: m, from: p0, count: jb, tau: T)
                        // The rest of the block's columns (rows of w) get this panel at once.
                        let rest = j0 + outer - (p0 + jb)
                        if rest > 0 {
                            BlockReflector(w: W, m: m, j0: p0, jb: jb, tau: T + p0)
                                .applyTransposed(to: W + (p0 + jb) * m + p0, rows: rest, ld: m)
                        }
                        p0 += jb
                    }
                    let trailing = n - (j0 + outer)
                    if trailing > 0 {
                        // Columns of a right of the block (rows of w): A_t ← Hᵀ A_t.
                        BlockReflector(w: W, m: m, j0: j0, jb: outer, tau: T + j0)
                            .applyTransposed(to: W + (j0 + outer) * m + j0, rows: trailing, ld: m)
                    }
                    j0 += outer
                }
            }
        }
    }

    /// Reflectors j0..<j0+jb, each applied at once to the panel's later columns (level 1).
    private static func factorPanel(_ W: UnsafeMutablePointer<Double>, m: Int, from j0: Int, count jb: Int, tau: UnsafeMutablePointer<Double>) {
        for j in j0..<(j0 + jb) {
            let x = W + j * m + j
            let len = m - j
            let (beta, t) = Householder.generate(x, count: len)
            tau[j] = t
            x[0] = beta
            // H_j on panel columns j+1..<j0+jb: y ← y − τ (v·y) v with v = (1, x[1...]).
            guard t != 0 else { continue }
            for c in (j + 1)..<(j0 + jb) {
                let y = W + c * m + j
                let d = y[0] + (len > 1 ? tlora_ddot(x + 1, y + 1, len - 1) : 0)
                let f = -t * d
                y[0] += f
                if len > 1 { tlora_daxpy(f, x + 1, y + 1, len - 1) }
            }
        }
    }

    /// R (k × n): entries on and above the diagonal, r[i][j] = a-column j's entry i = w[j][i].
    var r: Matrix<Double> {
        var r = Matrix<Double>(rows: k, cols: n)
        for i in 0..<k { for j in i..<n { r[i, j] = w[j, i] } }
        return r
    }

    /// C ← Q·C for the m × cols row-major C (every column a vector of m coordinates). With
    /// `identityPrefix`, C's first k columns are known to start as [I; 0] (forming Q), so block j0
    /// skips the columns < j0 that it cannot change.
    func applyQ(toColumnsOf c: inout Matrix<Double>, identityPrefix: Bool = false) {
        precondition(c.rows == m)
        guard k > 0, c.cols > 0 else { return }
        let nb = Self.block
        let cols = c.cols
        w.storage.withUnsafeBufferPointer { wp in
            tau.withUnsafeBufferPointer { tp in
                c.storage.withUnsafeMutableBufferPointer { cp in
                    for j0 in stride(from: (k - 1) / nb * nb, through: 0, by: -nb) {
                        let jb = min(nb, k - j0)
                        // Safe: k > 0 and C is non-empty.
                        let block = BlockReflector(vectors: wp.baseAddress! + j0 * m + j0, ld: m, length: m - j0, count: jb, tau: tp.baseAddress! + j0)
                        let first = identityPrefix ? j0 : 0
                        block.applyToColumns(cp.baseAddress! + j0 * cols + first, cols: cols - first, ld: cols)
                    }
                }
            }
        }
    }

    /// Thin Q (m × k).
    var q: Matrix<Double> {
        var q = Matrix<Double>(rows: m, cols: k)
        for i in 0..<k { q[i, i] = 1 }
        applyQ(toColumnsOf: &q, identityPrefix: true)
        return q
    }
}
