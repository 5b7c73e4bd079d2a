/// Eigendecomposition of a symmetric tridiagonal matrix by divide and conquer (Cuppen 1981 with
/// Gu & Eisenstat's stable eigenvectors, 1995; the structure of LAPACK's dstedc/dlaed0–3, written
/// from the papers).
///
/// `T = diag(T₁, T₂) + |ρ|·u uᵀ` with ρ the coupling off-diagonal entry and u = e_{m−1} ± e_m
/// (T₁'s last and T₂'s first diagonal entries reduced by |ρ|). With `T_i = Q_i Λ_i Q_iᵀ`,
/// `T = diag(Q₁, Q₂) · (Λ + ρ' z zᵀ) · diag(Q₁, Q₂)ᵀ`, z = (last row of Q₁, ±first row of Q₂)/√2,
/// ρ' = 2|ρ|. Deflation (small z_i, close eigenvalues: perturbations ≤ 8·u·‖T‖) comes first; the
/// remaining eigenvalues solve the secular equation, their vectors are built from the corrected ẑ
/// and pushed through diag(Q₁, Q₂) with one block-structured GEMM. Leaves (≤ 25) use cyclic Jacobi.
///
/// Accuracy: ‖T − Q Λ Qᵀ‖ ≲ c·n·u·‖T‖, ‖QᵀQ − I‖ ≲ c·n·u, eigenvalues within c·n·u·‖T‖.
/// - Complexity: O(n³) in GEMMs (≈ 4/3·n³ flops at the top, less with deflation).
enum TridiagonalEigen {
    /// `T = q · diag(values) · qᵀ`, values ascending.
    struct Factors {
        var q: Matrix<Double>
        var values: [Double]
    }

    static let leafSize = 25

    static func decompose(d: [Double], e: [Double]) -> Factors {
        let n = d.count
        precondition(e.count == max(n - 1, 0))
        if n == 0 { return Factors(q: Matrix(rows: 0, cols: 0), values: []) }
        var scale = 0.0
        for x in d { scale = max(scale, abs(x)) }
        for x in e { scale = max(scale, abs(x)) }
        // A power of two (max |entry| in [1, 2)): exact, so diagonal inputs come back bit for bit.
        if scale > 0 { scale = Double(sign: .plus, exponent: scale.exponent, significand: 1) }
        if scale == 0 { return Factors(q: .identity(n), values: [Double](repeating: 0, count: n)) }
        var ds = d.map { $0 / scale }
        let es = e.map { $0 / scale } + [0]
        var f = ds.withUnsafeMutableBufferPointer { dp in
            es.withUnsafeBufferPointer { ep in solve(dp.baseAddress!, ep.baseAddress!, n: n) }  // safe: n ≥ 1
        }
        for i in f.values.indices { f.values[i] *= scale }
        return f
    }

    /// `d` is modified (the splits' rank-one corrections); each subproblem owns its range.
    static func solve(_ d: UnsafeMutablePointer<Double>, _ e: UnsafePointer<Double>, n: Int) -> Factors {
        if n <= leafSize { return leaf(d, e, n: n) }
        let m = n / 2
        let rho = e[m - 1]
        d[m - 1] -= abs(rho)
        d[m] -= abs(rho)
        // The halves are independent (each owns its range of d); at the top levels they run on
        // separate cores.
        let (upper, lower) = Parallel.pair(parallel: n >= BidiagonalSVD.parallelSize,
                                           { solve(d, e, n: m) },
                                           { solve(d + m, e + m, n: n - m) })
        return merge(upper, lower, rho: rho, m: m)
    }

    /// Cyclic Jacobi on the dense tridiagonal block.
    static func leaf(_ d: UnsafePointer<Double>, _ e: UnsafePointer<Double>, n: Int) -> Factors {
        var a = Matrix<Double>(rows: n, cols: n)
        for i in 0..<n {
            a[i, i] = d[i]
            if i + 1 < n { a[i, i + 1] = e[i]; a[i + 1, i] = e[i] }
        }
        var q = Matrix<Double>.identity(n)
        SymmetricJacobi.diagonalize(&a, vectors: &q)
        let values = (0..<n).map { a[$0, $0] }
        let order = (0..<n).sorted { values[$0] < values[$1] }
        var out = Matrix<Double>(rows: n, cols: n)
        for (dst, src) in order.enumerated() { for r in 0..<n { out[r, dst] = q[r, src] } }
        return Factors(q: out, values: order.map { values[$0] })
    }

    static func merge(_ f1: Factors, _ f2: Factors, rho: Double, m: Int) -> Factors {
        let n1 = f1.values.count, n2 = f2.values.count, n = n1 + n2
        let sign: Double = rho >= 0 ? 1 : -1
        let inv = 1 / 2.0.squareRoot()
        var z = [Double](repeating: 0, count: n)
        var dd = f1.values + f2.values
        for t in 0..<n1 { z[t] = f1.q[n1 - 1, t] * inv }
        for t in 0..<n2 { z[n1 + t] = sign * f2.q[0, t] * inv }
        let rhoPrime = 2 * abs(rho)
        var w = Matrix<Double>(rows: n, cols: n)
        w.storage.withUnsafeMutableBufferPointer { wp in
        f1.q.storage.withUnsafeBufferPointer { q1 in
        f2.q.storage.withUnsafeBufferPointer { q2 in
            for r in 0..<n1 { for t in 0..<n1 { wp[r * n + t] = q1[r * n1 + t] } }
            for r in 0..<n2 { for t in 0..<n2 { wp[(n1 + r) * n + n1 + t] = q2[r * n2 + t] } }
        }}}
        // Deflation in ascending order of the children's eigenvalues.
        var order: [Int] = []
        order.reserveCapacity(n)
        var a = 0, b = n1
        while a < n1 || b < n {
            if b >= n || (a < n1 && dd[a] <= dd[b]) { order.append(a); a += 1 } else { order.append(b); b += 1 }
        }
        var dmax = 0.0, zmax = 0.0
        for x in dd { dmax = max(dmax, abs(x)) }
        for x in z { zmax = max(zmax, abs(x)) }
        let tol = 8 * Double.ulpOfOne * max(dmax, rhoPrime * zmax)
        var kept: [Int] = []
        var deflated: [(Int, Double)] = []
        for idx in order {
            if rhoPrime * abs(z[idx]) <= tol {
                deflated.append((idx, dd[idx]))
                continue
            }
            if let prev = kept.last {
                // Rotate z_prev into z_idx; if the coupling it leaves, c·s·(d_prev − d_idx), is
                // negligible, prev deflates with the rotated diagonal entry.
                let r = (z[idx] * z[idx] + z[prev] * z[prev]).squareRoot()
                let c = z[idx] / r, s = z[prev] / r
                if abs(c * s * (dd[prev] - dd[idx])) <= tol {
                    BidiagonalSVD.rotateColumns(&w, idx, prev, c, s)
                    let dp = dd[prev], di = dd[idx]
                    deflated.append((prev, c * c * dp + s * s * di))
                    dd[idx] = s * s * dp + c * c * di
                    z[idx] = r
                    z[prev] = 0
                    kept.removeLast()
                }
            }
            kept.append(idx)
        }
        let k = kept.count
        var qk = Matrix<Double>(rows: n, cols: 0)
        var lambda = [Double](repeating: 0, count: k)
        if k > 0 {
            let sec = SecularEquation(count: k, c0: 1 / rhoPrime, weights: kept.map { z[$0] * z[$0] }, d: kept.map { dd[$0] }, squared: false)
            var delta = [Double](repeating: 0, count: k * k)
            var qh = Matrix<Double>(rows: k, cols: k)
            let chunk = BidiagonalSVD.parallelChunk
            delta.withUnsafeMutableBufferPointer { dp in
            lambda.withUnsafeMutableBufferPointer { lp in
                let D = dp.baseAddress!, L = lp.baseAddress!  // safe: k ≥ 1
                Parallel.forEachRange(k, minimum: chunk) { roots in
                    for j in roots {
                        let (o, mu) = sec.solve(j, delta: D + j * k)
                        L[j] = sec.d[o] + mu
                    }
                }
                var zhat = sec.correctedWeights(delta: D, parallelChunk: chunk)
                for i in 0..<k where z[kept[i]] < 0 { zhat[i] = -zhat[i] }
                // Eigenvectors of Λ + ρ' ẑẑᵀ: q_j ∝ (ẑ_i / (d_i − λ_j))_i.
                qh.storage.withUnsafeMutableBufferPointer { qb in
                    let Q = qb.baseAddress!
                    Parallel.forEachRange(k, minimum: chunk) { columns in
                        var x = [Double](repeating: 0, count: k)
                        for j in columns {
                            var norm = 0.0
                            for i in 0..<k { x[i] = zhat[i] / D[j * k + i]; norm += x[i] * x[i] }
                            let s = 1 / norm.squareRoot()
                            for i in 0..<k { Q[i * k + j] = x[i] * s }
                        }
                    }
                }
            }}
            qk = BidiagonalSVD.blockProduct(w, kept, qh, split: n1)
        }
        var entries: [(Double, Int, Bool)] = []
        entries.reserveCapacity(n)
        for j in 0..<k { entries.append((lambda[j], j, true)) }
        for (idx, v) in deflated { entries.append((v, idx, false)) }
        entries.sort { $0.0 < $1.0 }
        var q = Matrix<Double>(rows: n, cols: n)
        var values = [Double](repeating: 0, count: n)
        q.storage.withUnsafeMutableBufferPointer { qp in
        qk.storage.withUnsafeBufferPointer { kp in
        w.storage.withUnsafeBufferPointer { wp in
            for (dst, entry) in entries.enumerated() {
                values[dst] = entry.0
                if entry.2 {
                    for r in 0..<n { qp[r * n + dst] = kp[r * k + entry.1] }
                } else {
                    for r in 0..<n { qp[r * n + dst] = wp[r * n + entry.1] }
                }
            }
        }}}
        _ = m
        return Factors(q: q, values: values)
    }
}

/// Cyclic two-sided Jacobi for small dense symmetric matrices: `a ← Jᵀ a J` until off-diagonal
/// entries are below u·√|a_ii a_jj|, accumulating `vectors ← vectors · J`.
enum SymmetricJacobi {
    static func diagonalize(_ a: inout Matrix<Double>, vectors q: inout Matrix<Double>) {
        let n = a.rows
        guard n > 1 else { return }
        let eps = Double.ulpOfOne
        a.storage.withUnsafeMutableBufferPointer { ap in
        q.storage.withUnsafeMutableBufferPointer { qp in
            let A = ap.baseAddress!, Q = qp.baseAddress!  // safe: n > 1
            var norm = 0.0
            for i in 0..<(n * n) { norm = max(norm, abs(A[i])) }
            for _ in 0..<60 {
                var rotated = false
                for p in 0..<(n - 1) {
                    for r in (p + 1)..<n {
                        let apr = A[p * n + r]
                        if apr == 0 { continue }
                        let app = A[p * n + p], arr = A[r * n + r]
                        if abs(apr) <= eps * (abs(app) * abs(arr)).squareRoot() || abs(apr) <= 1e-300 * norm { A[p * n + r] = 0; A[r * n + p] = 0; continue }
                        let theta = (arr - app) / (2 * apr)
                        let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                        let c = 1 / (t * t + 1).squareRoot(), s = t * c
                        // Columns p, r then rows p, r: a ← Jᵀ a J with J the rotation in (p, r).
                        for i in 0..<n {
                            let x = A[i * n + p], y = A[i * n + r]
                            A[i * n + p] = c * x - s * y
                            A[i * n + r] = s * x + c * y
                        }
                        for j in 0..<n {
                            let x = A[p * n + j], y = A[r * n + j]
                            A[p * n + j] = c * x - s * y
                            A[r * n + j] = s * x + c * y
                        }
                        A[p * n + r] = 0
                        A[r * n + p] = 0
                        for i in 0..<n {
                            let x = Q[i * n + p], y = Q[i * n + r]
                            Q[i * n + p] = c * x - s * y
                            Q[i * n + r] = s * x + c * y
                        }
                        rotated = true
                    }
                }
                if !rotated { break }
            }
        }}
    }
}
