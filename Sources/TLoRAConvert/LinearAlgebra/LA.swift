import TLoRANumerics

/// The dense linear algebra the converters use, in f64. A facade so the algorithms read the same
/// whichever kernels sit underneath.
/// TEMPORARY reference implementations until TLoRANumerics' kernels are merged.
enum LA {
    /// `op(a) · op(b)`.
    static func mul(_ a: Matrix<Double>, _ b: Matrix<Double>, ta: Bool = false, tb: Bool = false) -> Matrix<Double> {
        let m = ta ? a.cols : a.rows, k = ta ? a.rows : a.cols
        let n = tb ? b.rows : b.cols
        precondition(k == (tb ? b.cols : b.rows), "inner dimensions differ")
        var c = Matrix<Double>(rows: m, cols: n)
        a.storage.withUnsafeBufferPointer { ap in
            b.storage.withUnsafeBufferPointer { bp in
                c.storage.withUnsafeMutableBufferPointer { cp in
                    for i in 0..<m {
                        for p in 0..<k {
                            let v = ta ? ap[p * a.cols + i] : ap[i * a.cols + p]
                            if v == 0 { continue }
                            if tb {
                                for j in 0..<n { cp[i * n + j] += v * bp[j * b.cols + p] }
                            } else {
                                for j in 0..<n { cp[i * n + j] += v * bp[p * b.cols + j] }
                            }
                        }
                    }
                }
            }
        }
        return c
    }

    /// Thin Householder QR: `a = q · r`, `q` m×k with orthonormal columns, `r` k×n upper, k = min(m, n).
    static func qr(_ a: Matrix<Double>) -> (q: Matrix<Double>, r: Matrix<Double>) {
        let m = a.rows, n = a.cols, k = min(m, n)
        var r = a
        var vs: [[Double]] = []
        for j in 0..<k {
            var v = (j..<m).map { r[$0, j] }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm == 0 { vs.append([]); continue }
            v[0] += v[0] >= 0 ? norm : -norm
            let vnorm2 = v.reduce(0) { $0 + $1 * $1 }
            for c in j..<n {
                var dot = 0.0
                for i in j..<m { dot += v[i - j] * r[i, c] }
                let f = 2 * dot / vnorm2
                for i in j..<m { r[i, c] -= f * v[i - j] }
            }
            vs.append(v)
        }
        var q = Matrix<Double>(rows: m, cols: k)
        for i in 0..<k { q[i, i] = 1 }
        for j in stride(from: k - 1, through: 0, by: -1) {
            let v = vs[j]
            if v.isEmpty { continue }
            let vnorm2 = v.reduce(0) { $0 + $1 * $1 }
            for c in 0..<k {
                var dot = 0.0
                for i in j..<m { dot += v[i - j] * q[i, c] }
                let f = 2 * dot / vnorm2
                for i in j..<m { q[i, c] -= f * v[i - j] }
            }
        }
        var rr = Matrix<Double>(rows: k, cols: n)
        for i in 0..<k { for j in i..<n { rr[i, j] = r[i, j] } }
        return (q, rr)
    }

    /// Thin SVD `a = u · diag(s) · vt`, s descending (one-sided Jacobi on the smaller side).
    static func svd(_ a: Matrix<Double>) -> (u: Matrix<Double>, s: [Double], vt: Matrix<Double>) {
        if a.rows < a.cols {
            let t = svd(a.transposed())
            return (t.vt.transposed(), t.s, t.u.transposed())
        }
        // Tall: QR first, then Jacobi on the n×n R (columns rotated until orthogonal).
        let (q, r) = qr(a)
        let n = r.cols
        var w = r  // columns of w become u·s
        var v = Matrix<Double>.identity(n)
        for _ in 0..<60 {
            var rotated = false
            for p in 0..<n {
                for qq in (p + 1)..<n {
                    var alpha = 0.0, beta = 0.0, gamma = 0.0
                    for i in 0..<w.rows {
                        alpha += w[i, p] * w[i, p]
                        beta += w[i, qq] * w[i, qq]
                        gamma += w[i, p] * w[i, qq]
                    }
                    if abs(gamma) <= 1e-15 * (alpha * beta).squareRoot() || gamma == 0 { continue }
                    rotated = true
                    let zeta = (beta - alpha) / (2 * gamma)
                    let t = (zeta >= 0 ? 1.0 : -1.0) / (abs(zeta) + (1 + zeta * zeta).squareRoot())
                    let c = 1 / (1 + t * t).squareRoot(), s = c * t
                    for i in 0..<w.rows {
                        let x = w[i, p], y = w[i, qq]
                        w[i, p] = c * x - s * y
                        w[i, qq] = s * x + c * y
                    }
                    for i in 0..<n {
                        let x = v[i, p], y = v[i, qq]
                        v[i, p] = c * x - s * y
                        v[i, qq] = s * x + c * y
                    }
                }
            }
            if !rotated { break }
        }
        var sv = (0..<n).map { j in (0..<w.rows).reduce(0.0) { $0 + w[$1, j] * w[$1, j] }.squareRoot() }
        let order = (0..<n).sorted { sv[$0] > sv[$1] }
        var u = Matrix<Double>(rows: n, cols: n)
        var vt = Matrix<Double>(rows: n, cols: n)
        for (k, j) in order.enumerated() {
            for i in 0..<n {
                u[i, k] = sv[j] > 0 ? w[i, j] / sv[j] : (i == k ? 1 : 0)
                vt[k, i] = v[i, j]
            }
        }
        sv = order.map { sv[$0] }
        return (mul(q, u), sv, vt)
    }

    /// Eigen-decomposition of a symmetric matrix: values descending, vectors as columns.
    static func eigh(_ a: Matrix<Double>) -> (values: [Double], vectors: Matrix<Double>) {
        let (u, s, vt) = svd(a)
        // For a symmetric matrix the SVD gives |λ|; recover signs from uᵀ a u.
        let n = a.rows
        var values = [Double](repeating: 0, count: n)
        for k in 0..<s.count {
            var sign = 0.0
            for i in 0..<n { sign += u[i, k] * vt[k, i] }
            values[k] = sign >= 0 ? s[k] : -s[k]
        }
        let order = (0..<n).sorted { values[$0] > values[$1] }
        var vectors = Matrix<Double>(rows: n, cols: n)
        for (k, j) in order.enumerated() { for i in 0..<n { vectors[i, k] = u[i, j] } }
        return (order.map { values[$0] }, vectors)
    }
}
