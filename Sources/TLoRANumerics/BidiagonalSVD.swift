import CTLoRAKernels

/// SVD of an upper bidiagonal matrix by divide and conquer (Gu & Eisenstat 1995; the structure of
/// LAPACK's dbdsdc/dlasd0–dlasd3, written from the papers).
///
/// The problem is `B` of n rows and n + sqre columns (sqre ∈ {0, 1}): `B[i][i] = d[i]`,
/// `B[i][i+1] = e[i]`. Splitting off row k = n/2 leaves an upper block of k rows and k+1 columns
/// and a lower block of the original kind; with their SVDs, `B = diag(U₁, 1, U₂) · M · diag(V₁, V₂)ᵀ`
/// where (after moving row k to the top) `M = [zᵀ; 0 diag(d₂…)]` — an "arrow" whose SVD comes from
/// the secular equation `1 + Σ z_i² / (d_i² − σ²) = 0`. Small or repeated entries deflate first
/// (a Givens rotation or a zero z_i, each perturbing B by ≤ 64·u·‖B‖); the singular vectors of the
/// rest are built from Gu–Eisenstat's corrected ẑ, so they are orthogonal to working precision, and
/// pushed through the children's vectors with one GEMM per side. Leaves (≤ 25 rows) use one-sided
/// Jacobi.
///
/// Accuracy: B = U Σ Vᵀ + E with ‖E‖ ≲ c·n·u·‖B‖, ‖UᵀU − I‖, ‖VᵀV − I‖ ≲ c·n·u; singular values
/// to within c·n·u·‖B‖ (absolute).
/// - Complexity: O(n³) in GEMMs at the merges (≈ 8/3·n³ flops at the top, less with deflation),
///   O(n²) per merge for the secular equation.
enum BidiagonalSVD {
    /// `B = u · [diag(s) 0] · vᵀ`, s ascending, u n×n, v (n+sqre)×(n+sqre).
    struct Factors {
        var u: Matrix<Double>
        var s: [Double]
        var v: Matrix<Double>
    }

    static let leafSize = 25
    /// Subproblems at least this large solve their halves concurrently.
    static let parallelSize = 384
    /// Secular roots / vectors per thread below which the merge's O(K²) loops stay serial.
    static let parallelChunk = 128

    /// The n×n upper bidiagonal with diagonal `d` and superdiagonal `e` (n − 1 entries).
    static func decompose(d: [Double], e: [Double]) -> Factors {
        let n = d.count
        precondition(e.count == max(n - 1, 0))
        if n == 0 { return Factors(u: Matrix(rows: 0, cols: 0), s: [], v: Matrix(rows: 0, cols: 0)) }
        // Scale to max |entry| ≈ 1 so tolerances are absolute and nothing under- or overflows.
        var scale = 0.0
        for x in d { scale = max(scale, abs(x)) }
        for x in e { scale = max(scale, abs(x)) }
        // A power of two (max |entry| in [1, 2)): exact, so diagonal inputs come back bit for bit.
        if scale > 0 { scale = Double(sign: .plus, exponent: scale.exponent, significand: 1) }
        if scale == 0 { return Factors(u: .identity(n), s: [Double](repeating: 0, count: n), v: .identity(n)) }
        let ds = d.map { $0 / scale }, es = e.map { $0 / scale } + [0]
        var f = ds.withUnsafeBufferPointer { dp in
            es.withUnsafeBufferPointer { ep in solve(dp.baseAddress!, ep.baseAddress!, n: n, sqre: 0) }  // safe: n ≥ 1
        }
        for i in f.s.indices { f.s[i] *= scale }
        return f
    }

    static func solve(_ d: UnsafePointer<Double>, _ e: UnsafePointer<Double>, n: Int, sqre: Int) -> Factors {
        if n <= leafSize { return leaf(d, e, n: n, sqre: sqre) }
        let nl = n / 2, nr = n - nl - 1
        // The halves are independent; at the top levels they run on separate cores.
        let (upper, lower) = Parallel.pair(parallel: n >= parallelSize,
                                           { solve(d, e, n: nl, sqre: 1) },
                                           { solve(d + nl + 1, e + nl + 1, n: nr, sqre: sqre) })
        return merge(upper, lower, alpha: d[nl], beta: e[nl], nl: nl, nr: nr, sqre: sqre)
    }

    // MARK: Leaves

    /// One-sided Jacobi on the rows of the dense n×(n+sqre) block: rows become σ_i·v_iᵀ while the
    /// accumulated rotations give u; zero rows get completed right vectors.
    static func leaf(_ d: UnsafePointer<Double>, _ e: UnsafePointer<Double>, n: Int, sqre: Int) -> Factors {
        let c = n + sqre
        var z = [Double](repeating: 0, count: n * c)
        for i in 0..<n {
            z[i * c + i] = d[i]
            if i + 1 < c { z[i * c + i + 1] = e[i] }
        }
        var p = Matrix<Double>.identity(n)
        let tol = Double.ulpOfOne * Double(c).squareRoot()
        z.withUnsafeMutableBufferPointer { zb in
            p.storage.withUnsafeMutableBufferPointer { pb in
                let Z = zb.baseAddress!, P = pb.baseAddress!  // safe: n ≥ 1
                for _ in 0..<80 {
                    var rotated = false
                    for i in 0..<(n - 1) {
                        for j in (i + 1)..<n {
                            var a = 0.0, b = 0.0, g = 0.0
                            tlora_ddot3(Z + i * c, Z + j * c, c, &a, &b, &g)
                            if a == 0 || b == 0 || abs(g) <= tol * (a * b).squareRoot() { continue }
                            let zeta = (b - a) / (2 * g)
                            let t = (zeta >= 0 ? 1.0 : -1.0) / (abs(zeta) + (1 + zeta * zeta).squareRoot())
                            let cs = 1 / (1 + t * t).squareRoot(), sn = cs * t
                            tlora_drot(Z + i * c, Z + j * c, c, cs, sn)
                            tlora_drot(P + i * n, P + j * n, n, cs, sn)
                            rotated = true
                        }
                    }
                    if !rotated { break }
                }
            }
        }
        let sigma = (0..<n).map { i in Norms.norm(z[(i * c)..<((i + 1) * c)]) }
        let order = (0..<n).sorted { sigma[$0] < sigma[$1] }
        var u = Matrix<Double>(rows: n, cols: n)
        var vt = Matrix<Double>(rows: c, cols: c)
        var s = [Double](repeating: 0, count: n)
        var valid = [Bool](repeating: false, count: c)
        for (dst, src) in order.enumerated() {
            for r in 0..<n { u[r, dst] = p[src, r] }
            // Below this the direction z/σ is not trustworthy; σ is then 0 to working precision.
            if sigma[src] > 1e-290 {
                s[dst] = sigma[src]
                valid[dst] = true
                for col in 0..<c { vt[dst, col] = z[src * c + col] / sigma[src] }
            }
        }
        JacobiSVD.completeOrthonormalRows(&vt, valid: valid)
        return Factors(u: u, s: s, v: vt.transposed())
    }

    // MARK: Merge

    static func merge(_ f1: Factors, _ f2: Factors, alpha: Double, beta: Double, nl: Int, nr: Int, sqre: Int) -> Factors {
        let n = nl + 1 + nr, c = n + sqre
        // Row nl of B becomes the z row; columns in the order (V₁'s null column, V₁'s, V₂'s[, V₂'s null]).
        var z = [Double](repeating: 0, count: n)
        var dd = [Double](repeating: 0, count: n)
        z[0] = alpha * f1.v[nl, nl]
        for t in 0..<nl { z[1 + t] = alpha * f1.v[nl, t]; dd[1 + t] = f1.s[t] }
        for t in 0..<nr { z[nl + 1 + t] = beta * f2.v[0, t]; dd[nl + 1 + t] = f2.s[t] }
        var uw = Matrix<Double>(rows: n, cols: n)
        var vw = Matrix<Double>(rows: c, cols: c)
        let r2 = nr + sqre
        uw.storage.withUnsafeMutableBufferPointer { up in
        vw.storage.withUnsafeMutableBufferPointer { vp in
        f1.u.storage.withUnsafeBufferPointer { u1 in
        f2.u.storage.withUnsafeBufferPointer { u2 in
        f1.v.storage.withUnsafeBufferPointer { v1 in
        f2.v.storage.withUnsafeBufferPointer { v2 in
            up[nl * n] = 1
            for r in 0..<nl { for t in 0..<nl { up[r * n + 1 + t] = u1[r * nl + t] } }
            for r in 0..<nr { for t in 0..<nr { up[(nl + 1 + r) * n + nl + 1 + t] = u2[r * nr + t] } }
            for r in 0...nl {
                vp[r * c] = v1[r * (nl + 1) + nl]
                for t in 0..<nl { vp[r * c + 1 + t] = v1[r * (nl + 1) + t] }
            }
            for r in 0..<r2 {
                for t in 0..<nr { vp[(nl + 1 + r) * c + nl + 1 + t] = v2[r * r2 + t] }
                if sqre == 1 { vp[(nl + 1 + r) * c + n] = v2[r * r2 + nr] }
            }
        }}}}}}
        if sqre == 1 {
            // The two columns whose only entry is in the z row merge into one: rotate V's columns 0, n.
            let zn = beta * f2.v[0, nr]
            let r = (z[0] * z[0] + zn * zn).squareRoot()
            if r > 0 {
                rotateColumns(&vw, 0, n, z[0] / r, zn / r)
                z[0] = r
            }
        }
        let (kept, deflated) = deflate(&z, dd, &uw, &vw, alpha: alpha, beta: beta, nl: nl)
        // The secular equation on the kept part.
        let k = kept.count
        let sec = SecularEquation(count: k, c0: 1, weights: kept.map { z[$0] * z[$0] }, d: kept.map { dd[$0] }, squared: true)
        var delta = [Double](repeating: 0, count: k * k)
        var sigma = [Double](repeating: 0, count: k)
        var uh = Matrix<Double>(rows: k, cols: k)
        var vh = Matrix<Double>(rows: k, cols: k)
        delta.withUnsafeMutableBufferPointer { dp in
        sigma.withUnsafeMutableBufferPointer { sp in
            let D = dp.baseAddress!, S = sp.baseAddress!  // safe: k ≥ 1
            Parallel.forEachRange(k, minimum: parallelChunk) { roots in
                for j in roots {
                    let (o, mu) = sec.solve(j, delta: D + j * k)
                    S[j] = (sec.d[o] * sec.d[o] + mu).squareRoot()
                }
            }
            var zhat = sec.correctedWeights(delta: D, parallelChunk: parallelChunk)
            for i in 0..<k where z[kept[i]] < 0 { zhat[i] = -zhat[i] }
            // Singular vectors of the arrow: v_j ∝ (ẑ_i / (d_i² − σ_j²))_i, u_j ∝ (−1, d_i ẑ_i / (d_i² − σ_j²))_i.
            uh.storage.withUnsafeMutableBufferPointer { ub in
            vh.storage.withUnsafeMutableBufferPointer { vb in
                let U = ub.baseAddress!, V = vb.baseAddress!
                Parallel.forEachRange(k, minimum: parallelChunk) { columns in
                var x = [Double](repeating: 0, count: k)
                for j in columns {
                    var nu = 1.0, nv = 0.0
                    for i in 0..<k {
                        x[i] = zhat[i] / D[j * k + i]
                        nv += x[i] * x[i]
                    }
                    for i in 1..<max(k, 1) { let y = sec.d[i] * x[i]; nu += y * y }
                    let iu = 1 / nu.squareRoot(), iv = 1 / nv.squareRoot()
                    U[j] = -iu
                    V[j] = x[0] * iv
                    for i in 1..<max(k, 1) {
                        U[i * k + j] = sec.d[i] * x[i] * iu
                        V[i * k + j] = x[i] * iv
                    }
                }
                }
            }}
        }}
        let uk = blockProduct(uw, kept, uh, split: nl + 1)
        let vk = blockProduct(vw, kept, vh, split: nl + 1)
        // Assemble, ascending.
        var entries: [(Double, Int, Bool)] = []  // (σ, column, from the secular part)
        entries.reserveCapacity(n)
        for j in 0..<k { entries.append((sigma[j], j, true)) }
        for (idx, s) in deflated { entries.append((s, idx, false)) }
        entries.sort { $0.0 < $1.0 }
        var u = Matrix<Double>(rows: n, cols: n)
        var v = Matrix<Double>(rows: c, cols: c)
        var s = [Double](repeating: 0, count: n)
        u.storage.withUnsafeMutableBufferPointer { up in
        v.storage.withUnsafeMutableBufferPointer { vp in
        uk.storage.withUnsafeBufferPointer { ukp in
        vk.storage.withUnsafeBufferPointer { vkp in
        uw.storage.withUnsafeBufferPointer { uwp in
        vw.storage.withUnsafeBufferPointer { vwp in
            for (dst, entry) in entries.enumerated() {
                s[dst] = entry.0
                let col = entry.1
                if entry.2 {
                    for r in 0..<n { up[r * n + dst] = ukp[r * k + col] }
                    for r in 0..<c { vp[r * c + dst] = vkp[r * k + col] }
                } else {
                    for r in 0..<n { up[r * n + dst] = uwp[r * n + col] }
                    for r in 0..<c { vp[r * c + dst] = vwp[r * c + col] }
                }
            }
            if sqre == 1 { for r in 0..<c { vp[r * c + n] = vwp[r * c + n] } }
        }}}}}}
        return Factors(u: u, s: s, v: v)
    }

    /// Deflation in ascending order of d (both children's values are ascending): z_i ≈ 0, d_i ≈ 0
    /// (merged into the pole at 0) and d_i ≈ d_j (a rotation moves z_j into z_i) each perturb the
    /// arrow by at most tol = 64·u·max(|α|, |β|, max d). Returns the kept indices (ascending d,
    /// strictly increasing by more than tol; index 0 first) and the deflated (index, σ) pairs.
    static func deflate(_ z: inout [Double], _ dd: [Double], _ uw: inout Matrix<Double>, _ vw: inout Matrix<Double>,
                        alpha: Double, beta: Double, nl: Int) -> ([Int], [(Int, Double)]) {
        let n = dd.count
        var order: [Int] = []
        order.reserveCapacity(n - 1)
        var a = 1, b = nl + 1
        while a <= nl || b < n {
            if b >= n || (a <= nl && dd[a] <= dd[b]) { order.append(a); a += 1 } else { order.append(b); b += 1 }
        }
        var dmax = 0.0
        for x in dd { dmax = max(dmax, x) }
        let tol = 64 * Double.ulpOfOne * max(abs(alpha), abs(beta), dmax)
        if abs(z[0]) <= tol { z[0] = tol }
        var kept = [0]
        var deflated: [(Int, Double)] = []
        for idx in order {
            if abs(z[idx]) <= tol {
                deflated.append((idx, dd[idx]))
                continue
            }
            if dd[idx] <= tol {
                // Next to the pole at 0: rotate z_idx into z_0 (V side only); σ is what is left of d.
                let r = (z[0] * z[0] + z[idx] * z[idx]).squareRoot()
                let cs = z[0] / r, sn = z[idx] / r
                rotateColumns(&vw, 0, idx, cs, sn)
                z[0] = r
                z[idx] = 0
                var sigma = cs * dd[idx]
                if sigma < 0 {
                    sigma = -sigma
                    let cols = uw.cols
                    uw.storage.withUnsafeMutableBufferPointer { p in for row in 0..<uw.rows { p[row * cols + idx] = -p[row * cols + idx] } }
                }
                deflated.append((idx, sigma))
                continue
            }
            let prev = kept[kept.count - 1]
            if prev != 0 && dd[idx] - dd[prev] <= tol {
                // Two (nearly) equal values: rotate z_prev into z_idx on both sides; prev deflates.
                let r = (z[idx] * z[idx] + z[prev] * z[prev]).squareRoot()
                let cs = z[idx] / r, sn = z[prev] / r
                rotateColumns(&uw, idx, prev, cs, sn)
                rotateColumns(&vw, idx, prev, cs, sn)
                z[idx] = r
                z[prev] = 0
                kept.removeLast()
                deflated.append((prev, dd[prev]))
            }
            kept.append(idx)
        }
        return (kept, deflated)
    }

    /// `w[:, cols] · h` for a `w` whose columns mostly live in one of the two row ranges
    /// [0, split) and [split, rows) (the children's vectors): each range is multiplied only by the
    /// columns with support in it, which halves the GEMM work when little rotation mixed them.
    static func blockProduct(_ w: Matrix<Double>, _ cols: [Int], _ h: Matrix<Double>, split: Int) -> Matrix<Double> {
        let rows = w.rows, ld = w.cols, k = cols.count
        var out = Matrix<Double>(rows: rows, cols: k)
        w.storage.withUnsafeBufferPointer { wp in
        h.storage.withUnsafeBufferPointer { hp in
        out.storage.withUnsafeMutableBufferPointer { op in
            for (lo, hi) in [(0, split), (split, rows)] where hi > lo {
                // The kept columns with a nonzero in rows lo..<hi.
                var used: [Int] = []
                for (i, j) in cols.enumerated() {
                    for r in lo..<hi where wp[r * ld + j] != 0 { used.append(i); break }
                }
                if used.isEmpty { continue }
                var a = [Double](repeating: 0, count: (hi - lo) * used.count)
                var b = [Double](repeating: 0, count: used.count * k)
                for r in lo..<hi { for (t, i) in used.enumerated() { a[(r - lo) * used.count + t] = wp[r * ld + cols[i]] } }
                for (t, i) in used.enumerated() { for j in 0..<k { b[t * k + j] = hp[i * k + j] } }
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        // Safe: both are non-empty (hi > lo, used and k non-empty).
                        GEMM.multiply(m: hi - lo, n: k, k: used.count, a: ap.baseAddress!, lda: used.count, b: bp.baseAddress!, ldb: k,
                                      c: op.baseAddress! + lo * k, ldc: k)
                    }
                }
            }
        }}}
        return out
    }

    /// (col_a, col_b) ← (c·col_a + s·col_b, −s·col_a + c·col_b).
    static func rotateColumns(_ m: inout Matrix<Double>, _ a: Int, _ b: Int, _ c: Double, _ s: Double) {
        let cols = m.cols
        m.storage.withUnsafeMutableBufferPointer { p in
            for r in 0..<m.rows {
                let x = p[r * cols + a], y = p[r * cols + b]
                p[r * cols + a] = c * x + s * y
                p[r * cols + b] = -s * x + c * y
            }
        }
    }
}
