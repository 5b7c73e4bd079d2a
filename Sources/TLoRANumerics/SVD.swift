#if canImport(Glibc)
import Glibc
#endif
import CTLoRAKernels

/// A thin singular value decomposition `a = u · diag(s) · vt`.
public struct SVDResult: Sendable {
    /// m × k, orthonormal columns.
    public var u: Matrix<Double>
    /// k values, descending, ≥ 0.
    public var s: [Double]
    /// k × n, orthonormal rows.
    public var vt: Matrix<Double>
}

/// Thin SVD of an m×n matrix, `a = u · diag(s) · vt`, k = min(m, n) (wide inputs are transposed).
///
/// Two routes, crossover measured at k = 32 (`SVDMethod.jacobiLimit`):
/// - k ≤ 32: QR first (`a = q·r`), then one-sided Jacobi on the rows of `r` (i.e. on the columns of
///   `rᵀ`, which converges in fewer sweeps — Drmač & Veselić 2008) with de Rijk's pivoting, then
///   `u = q · J`. Singular values to high *relative* accuracy when `a`'s columns are well scaled.
/// - k > 32: `GolubKahanSVD` — QR for tall inputs, blocked bidiagonalization, divide and conquer on
///   the bidiagonal, back-transformation in compact-WY blocks.
///
/// Accuracy (f64, both routes): ‖uᵀu − I‖, ‖vᵀv − I‖ ≲ c·k·u; ‖a − u s vt‖ ≲ c·k·u·‖a‖; σ_i within
/// c·k·u·‖a‖ (tested ≤ 1e-13, ≤ 1e-13‖a‖ and ≤ 1e-12·σ_max; measured ≤ 8e-15 up to 4096×512 and
/// 1024×1024, docs/NUMERICS.md).
/// - Complexity: tall m×k: ≈ 6mk² + 11k³ flops (QR, reduction of the k×k triangle, forming u);
///   square: ≈ 12k³, about half of the reduction being memory-bound matrix–vector products.
public func svd(_ a: Matrix<Double>) -> SVDResult {
    if a.rows < a.cols {
        let t = svd(a.transposed())
        return SVDResult(u: t.vt.transposed(), s: t.s, vt: t.u.transposed())
    }
    let k = a.cols
    if k == 0 { return SVDResult(u: Matrix(rows: a.rows, cols: 0), s: [], vt: Matrix(rows: 0, cols: 0)) }
    if k > SVDMethod.jacobiLimit { return GolubKahanSVD.decompose(a) }
    let (q, r) = householderQR(a)
    let (j, s, vt) = JacobiSVD.decompose(r)
    // a = q r = q (J Σ Vᵀ): u = q · J.
    return SVDResult(u: matmul(q, j), s: s, vt: vt)
}

enum SVDMethod {
    /// Up to this many columns (after transposing wide inputs) `svd` and `leftSVD` take the QR +
    /// one-sided Jacobi route, above it bidiagonalization + divide and conquer (measured crossover;
    /// `TLORA_JACOBI_LIMIT` overrides it for experiments).
    static let jacobiLimit: Int = {
        if let v = getenv("TLORA_JACOBI_LIMIT"), let n = Int(String(cString: v)) { return n }
        return 32
    }()
}

enum JacobiSVD {
    /// SVD of a square matrix `r` = J · diag(s) · vt by one-sided Jacobi on its rows.
    static func decompose(_ r: Matrix<Double>) -> (j: Matrix<Double>, s: [Double], vt: Matrix<Double>) {
        let n = r.rows
        precondition(r.cols == n)
        // Rows of z are rotated pairwise until mutually orthogonal: z ← Gᵀ z, and p accumulates Gᵀ.
        // Then r = pᵀ z, z's rows = σ_i · v_iᵀ, so r = (pᵀ) Σ Vᵀ.
        var z = r
        var p = Matrix<Double>.identity(n)
        let tol = Double.ulpOfOne * Double(n).squareRoot().rounded(.up)
        z.storage.withUnsafeMutableBufferPointer { zb in
            p.storage.withUnsafeMutableBufferPointer { pb in
                // Safe: n ≥ 1, so both buffers are non-empty.
                let status = tlora_jacobi_rows(zb.baseAddress!, pb.baseAddress!, n, tol, 60, Int32(Parallel.workerCount))
                precondition(status == 0, "Jacobi SVD ran out of memory")
            }
        }
        // Singular values are the row norms; order descending.
        var sigma = (0..<n).map { i in Norms.norm(z.storage[(i * n)..<((i + 1) * n)]) }
        let order = (0..<n).sorted { sigma[$0] > sigma[$1] }
        var j = Matrix<Double>(rows: n, cols: n)
        var vt = Matrix<Double>(rows: n, cols: n)
        for (dst, src) in order.enumerated() {
            for c in 0..<n { j[c, dst] = p[src, c] }
            if sigma[src] > 0 { for c in 0..<n { vt[dst, c] = z[src, c] / sigma[src] } }
        }
        sigma = order.map { sigma[$0] }
        completeOrthonormalRows(&vt, valid: sigma.map { $0 > 0 && $0 >= sigma[0] * 1e-300 })
        return (j, sigma, vt)
    }

    /// Rows flagged invalid (zero singular values) are replaced by unit vectors orthogonal to all
    /// others, so `vt` stays orthonormal on rank-deficient inputs. Each new row starts from the
    /// standard basis vector with the largest component outside the span of the rows so far (at
    /// least 1/√n of it, since a whole dimension is missing) and is orthogonalized twice
    /// (Gram–Schmidt), which makes it orthogonal to working precision.
    static func completeOrthonormalRows(_ vt: inout Matrix<Double>, valid: [Bool]) {
        let n = vt.cols
        guard valid.contains(false), n > 0 else { return }
        var done = valid
        // outside[c] = 1 − Σ_rows vt[row, c]²: the squared distance of e_c from the rows' span.
        var outside = [Double](repeating: 1, count: n)
        for row in 0..<vt.rows where done[row] { for c in 0..<n { outside[c] -= vt[row, c] * vt[row, c] } }
        for row in 0..<vt.rows where !valid[row] {
            var best = 0
            for c in 1..<n where outside[c] > outside[best] { best = c }
            var v = [Double](repeating: 0, count: n)
            v[best] = 1
            for _ in 0..<2 {
                for other in 0..<vt.rows where done[other] {
                    var d = 0.0
                    for c in 0..<n { d += vt[other, c] * v[c] }
                    if d != 0 { for c in 0..<n { v[c] -= d * vt[other, c] } }
                }
            }
            let norm = Norms.norm(v[...])
            for c in 0..<n {
                vt[row, c] = norm > 0 ? v[c] / norm : 0
                outside[c] -= vt[row, c] * vt[row, c]
            }
            done[row] = true
        }
    }
}

/// The smallest rank `k` whose discarded tail `sqrt(Σ_{i ≥ k} s_i²)` is at most `tolerance`, capped at
/// `maxRank`, with the tail actually discarded.
public func truncationRank(singularValues s: [Double], tolerance: Double, maxRank: Int = Int.max) -> (rank: Int, tail: Double) {
    var tail2 = 0.0
    var k = s.count
    while k > 0 {
        let next = tail2 + s[k - 1] * s[k - 1]
        if next.squareRoot() > tolerance { break }
        tail2 = next
        k -= 1
    }
    if k > maxRank {
        for i in maxRank..<k { tail2 += s[i] * s[i] }
        k = maxRank
    }
    return (k, tail2.squareRoot())
}

/// The left singular vectors, singular values and `S·Vᵀ` of an m×n matrix, without accumulating the
/// right rotations: `a = u · svt` with `u` m×k orthonormal and `svt = uᵀ · a` (rows σ_i v_iᵀ),
/// k = min(m, n). Half the work of `svd`, for truncations that keep `u` and push `svt` onwards
/// (TT rounding, HOSVD).
///
/// Accuracy: `u`'s orthogonality and the singular values as in `svd`; `svt` is the exact projection
/// of `a` on `u` (error ≲ k·u·‖a‖ per entry), so `a − u·svt` is at the rounding level and truncating
/// to the first r rows/columns discards exactly the rest of the spectrum.
///
/// `orthogonality` is the Jacobi stopping threshold (|cos| between computed left vectors); the default
/// ε·√k gives full accuracy, truncations that are certified afterwards may pass a looser one to
/// save the last polishing sweeps.
public func leftSVD(_ a: Matrix<Double>, orthogonality: Double? = nil) -> (u: Matrix<Double>, s: [Double], svt: Matrix<Double>) {
    let m = a.rows, n = a.cols, k = min(m, n)
    if k == 0 { return (Matrix(rows: m, cols: 0), [], Matrix(rows: 0, cols: n)) }
    if k > SVDMethod.jacobiLimit && orthogonality == nil {
        // Bidiagonalization route: for tall a, u without
        // accumulating v; for wide a the left vectors of a are the right vectors of aᵀ.
        let f = m >= n ? GolubKahanSVD.decompose(a, wantV: false) : GolubKahanSVD.decompose(a.transposed())
        let u = m >= n ? f.u : f.vt.transposed()
        return (u, f.s, matmul(u, a, transposeA: true))
    }
    // The left singular vectors of a are those of a k×k triangle: rᵀ for tall a = q r, r for wide
    // aᵀ = q r (a = rᵀ qᵀ). Rotating the rows of z = (that triangle)ᵀ orthogonalizes its columns.
    var z: Matrix<Double>
    var q: Matrix<Double>? = nil
    if m >= n {
        let f = householderQR(a)
        q = f.q
        z = f.r  // rows of r = columns of rᵀ... left vectors of r are found from r's columns: use rᵀ
        z = z.transposed()
    } else {
        z = householderQR(a.transposed()).r  // a = rᵀ qᵀ: left vectors of rᵀ = columns of rᵀ = rows of r
    }
    let tol = orthogonality ?? Double.ulpOfOne * Double(k).squareRoot().rounded(.up)
    z.storage.withUnsafeMutableBufferPointer { zb in
        // Safe: k ≥ 1.
        let status = tlora_jacobi_rows(zb.baseAddress!, nil, k, tol, 60, Int32(Parallel.workerCount))
        precondition(status == 0, "Jacobi SVD ran out of memory")
    }
    // Rows of z are now σ_i u_iᵀ (u_i the left singular vectors of the k×k factor).
    var sigma = (0..<k).map { i in Norms.norm(z.storage[(i * k)..<((i + 1) * k)]) }
    let order = (0..<k).sorted { sigma[$0] > sigma[$1] }
    var uk = Matrix<Double>(rows: k, cols: k)
    for (dst, src) in order.enumerated() where sigma[src] > 0 {
        for c in 0..<k { uk[c, dst] = z[src, c] / sigma[src] }
    }
    sigma = order.map { sigma[$0] }
    // Zero singular values: complete u to an orthonormal basis (as columns), via its transpose.
    var ukt = uk.transposed()
    JacobiSVD.completeOrthonormalRows(&ukt, valid: sigma.map { $0 > 0 })
    uk = ukt.transposed()
    let u = q.map { matmul($0, uk) } ?? uk
    return (u, sigma, matmul(u, a, transposeA: true))
}
