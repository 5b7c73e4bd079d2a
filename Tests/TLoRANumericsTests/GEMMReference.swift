import TLoRANumerics
import _TLoRATestSupport

/// Lets the GEMM tests run the same checks on `Float` and `Double`.
protocol GEMMScalar: TLoRAFloat {
    static func gemm(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Self, _ a: UnsafePointer<Self>, _ lda: Int,
                     _ b: UnsafePointer<Self>, _ ldb: Int, _ beta: Self, _ c: UnsafeMutablePointer<Self>, _ ldc: Int,
                     _ kernel: GEMM.Kernel?, _ threads: Int?)
}

extension Float: GEMMScalar {
    static func gemm(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float, _ a: UnsafePointer<Float>, _ lda: Int,
                     _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
                     _ kernel: GEMM.Kernel?, _ threads: Int?) {
        GEMM.multiply(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                      beta: beta, c: c, ldc: ldc, kernel: kernel, threads: threads)
    }
}

extension Double: GEMMScalar {
    static func gemm(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Double, _ a: UnsafePointer<Double>, _ lda: Int,
                     _ b: UnsafePointer<Double>, _ ldb: Int, _ beta: Double, _ c: UnsafeMutablePointer<Double>, _ ldc: Int,
                     _ kernel: GEMM.Kernel?, _ threads: Int?) {
        GEMM.multiply(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                      beta: beta, c: c, ldc: ldc, kernel: kernel, threads: threads)
    }
}

/// A product op(A)·op(B) (m×k times k×n, row-major) with the exact-enough reference it is checked
/// against: `value` = Σ_p a_ip b_pj, `magnitude` = Σ_p |a_ip b_pj|, `squares` = Σ_p (a_ip b_pj)².
/// For f32 inputs the sums run in f64 (its rounding is 2⁻²⁹ of f32's); for f64 inputs `value` is a
/// compensated dot product (Ogita–Rump–Oishi Dot2: as if accumulated in twice the precision).
struct GEMMProblem<T: GEMMScalar> {
    let m: Int, n: Int, k: Int
    let opA: [T], opB: [T]
    let value: [Double], magnitude: [Double], squares: [Double]

    init(m: Int, n: Int, k: Int, seed: UInt64) {
        var g = SeededGenerator(seed: seed)
        self.init(m: m, n: n, k: k,
                  opA: RandomTensors.gaussianMatrix(rows: m, cols: k, using: &g, as: T.self).storage,
                  opB: RandomTensors.gaussianMatrix(rows: k, cols: n, using: &g, as: T.self).storage)
    }

    init(m: Int, n: Int, k: Int, opA: [T], opB: [T]) {
        self.m = m; self.n = n; self.k = k
        self.opA = opA; self.opB = opB
        var value = [Double](repeating: 0, count: m * n), magnitude = value, squares = value
        let compensated = T.self == Double.self
        opA.withUnsafeBufferPointer { a in opB.withUnsafeBufferPointer { b in
            var bt = [Double](repeating: 0, count: k * n)  // op(B) transposed, so each dot product reads rows
            for p in 0..<k { for j in 0..<n { bt[j * k + p] = Double(b[p * n + j]) } }
            let ad = a.map { Double($0) }
            for i in 0..<m { for j in 0..<n {
                var s = 0.0, e = 0.0, mag = 0.0, sq = 0.0
                for p in 0..<k {
                    let x = ad[i * k + p], y = bt[j * k + p]
                    let prod = x * y
                    if compensated {
                        let perr = (-prod).addingProduct(x, y)  // exact: x·y = prod + perr
                        let t = s + prod, z = t - s
                        e += (s - (t - z)) + (prod - z) + perr  // TwoSum's error term
                        s = t
                    } else {
                        s += prod
                    }
                    mag += abs(prod)
                    sq += prod * prod
                }
                value[i * n + j] = s + e
                magnitude[i * n + j] = mag
                squares[i * n + j] = sq
            } }
        } }
        self.value = value; self.magnitude = magnitude; self.squares = squares
    }

    /// The stored form of op(A) (transposed: k×m) with `pad` unused elements after each row.
    func storedA(transposed: Bool, pad: Int) -> (data: [T], ld: Int) {
        Self.store(opA, rows: m, cols: k, transposed: transposed, pad: pad)
    }

    func storedB(transposed: Bool, pad: Int) -> (data: [T], ld: Int) {
        Self.store(opB, rows: k, cols: n, transposed: transposed, pad: pad)
    }

    static func store(_ x: [T], rows: Int, cols: Int, transposed: Bool, pad: Int) -> (data: [T], ld: Int) {
        let r = transposed ? cols : rows, c = transposed ? rows : cols, ld = c + pad
        var out = [T](repeating: T(7777), count: max(1, r * ld))
        for i in 0..<rows { for j in 0..<cols { out[transposed ? j * ld + i : i * ld + j] = x[i * cols + j] } }
        return (out, ld)
    }

    /// C = alpha·op(A)·op(B) + beta·C0 through GEMM; C is m × (n + pad), the padding and C0 filled
    /// from `seed` (NaN where beta == 0, which GEMM must not read). Returns C and C0.
    func run(ta: Bool, tb: Bool, alpha: T = 1, beta: T = 0, pad: Int = 0, kernel: GEMM.Kernel?, threads: Int?,
             seed: UInt64 = 1) -> (c: [T], c0: [T], ldc: Int) {
        let (a, lda) = storedA(transposed: ta, pad: pad), (b, ldb) = storedB(transposed: tb, pad: pad)
        let ldc = n + pad
        var g = SeededGenerator(seed: seed)
        let c0 = (0..<(m * ldc)).map { i in i % ldc >= n ? T(-4321) : beta == 0 ? T.nan : T(g.gaussian()) }
        var c = c0
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
            T.gemm(ta, tb, m, n, k, alpha, ap.baseAddress!, lda, bp.baseAddress!, ldb, beta, cp.baseAddress!, ldc, kernel, threads)
        } } }
        return (c, c0, ldc)
    }

    /// Elements that break |ĉ − c| ≤ γ_{k+3}·(|alpha|·Σ|a||b| + |beta·c0|), the worst-case bound of
    /// any summation order (with or without FMA; +3 for alpha, beta and the reference's rounding),
    /// plus padding that changed: their count and the first few. None when all is well.
    func violations(_ r: (c: [T], c0: [T], ldc: Int), alpha: T = 1, beta: T = 0) -> (count: Int, first: [String]) {
        let u = Double(T.unitRoundoff), steps = Double(k + 3)
        let gamma = steps * u / (1 - steps * u)
        var count = 0, first: [String] = []
        func bad(_ what: @autoclosure () -> String) {
            count += 1
            if first.count < 3 { first.append(what()) }
        }
        for i in 0..<m {
            for j in 0..<r.ldc {
                let got = r.c[i * r.ldc + j]
                if j >= n {
                    if got != r.c0[i * r.ldc + j] { bad("padding (\(i),\(j)) changed") }
                    continue
                }
                let old = beta == 0 ? 0 : Double(beta) * Double(r.c0[i * r.ldc + j])
                let exact = Double(alpha) * value[i * n + j] + old
                let bound = gamma * (abs(Double(alpha)) * magnitude[i * n + j] + abs(old)) + Double(T.leastNormalMagnitude)
                let err = abs(Double(got) - exact)
                if !(err <= bound) { bad("(\(i),\(j)): error \(err) > bound \(bound)") }
            }
        }
        return (count, first)
    }
}
