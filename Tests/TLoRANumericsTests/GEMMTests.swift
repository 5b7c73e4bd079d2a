import Testing
import TLoRANumerics
import _TLoRATestSupport

#if canImport(Glibc)
import Glibc
#endif

/// GEMM on every kernel this CPU runs (on an AVX-512 machine: AVX-512, AVX2 and portable, all in
/// this one process through `kernel:`), every transpose combination and thread counts 1–3.
/// Shapes are chosen to hit the kernels' edges (rows not a multiple of 6 or 12, columns not a
/// multiple of 8/16/32), k = 1, several slices of K (kc = 192…384), several column blocks of B
/// (nb = 256) and several row panels of A (mb = 2040).
@Suite struct GEMMTests {
    static let transposes = [(false, false), (false, true), (true, false), (true, true)]

    static let f32Shapes = [(1, 1, 1), (1, 1, 300), (7, 13, 5), (12, 32, 1), (13, 33, 17), (6, 16, 256),
                            (25, 70, 1000), (97, 300, 513), (1, 500, 3), (500, 1, 3), (130, 65, 260), (2100, 20, 10)]
    static let f64Shapes = [(1, 1, 1), (7, 13, 5), (12, 16, 1), (13, 17, 33), (25, 40, 300), (130, 70, 260), (2100, 20, 10)]

    @Test func everyKernelTheCPUHasIsOffered() {
        let supported = GEMM.Kernel.supported
        #expect(supported.first == .portable)
        #expect(supported.contains(GEMM.Kernel.active))
        // Each level needs the ones below it.
        for kernel in supported { for lower in GEMM.Kernel.allCases where lower.rawValue < kernel.rawValue { #expect(lower.isSupported) } }
        // Cross-check the run-time detection against the kernel's own report (Linux lists a flag
        // only when the OS also saves the registers it needs).
        guard let flags = Self.cpuFlags() else { return }
        #expect(GEMM.Kernel.avx2.isSupported == (flags.contains("avx2") && flags.contains("fma") && flags.contains("f16c")))
        #expect(GEMM.Kernel.avx512.isSupported == ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma", "f16c"].allSatisfy(flags.contains))
    }

    @Test(arguments: f32Shapes)
    func f32WithinTheWorstCaseBound(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        let problem = GEMMProblem<Float>(m: m, n: n, k: k, seed: UInt64(m * 1_000_003 + n * 1009 + k))
        for kernel in GEMM.Kernel.supported { for (ta, tb) in Self.transposes { for threads in 1...3 {
            let r = problem.run(ta: ta, tb: tb, kernel: kernel, threads: threads)
            let bad = problem.violations(r)
            #expect(bad.count == 0, "\(kernel) \(shape) ta=\(ta) tb=\(tb) threads=\(threads): \(bad.first)")
        } } }
    }

    @Test(arguments: f64Shapes)
    func f64WithinTheWorstCaseBound(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        let problem = GEMMProblem<Double>(m: m, n: n, k: k, seed: UInt64(m * 7919 + n * 31 + k))
        for kernel in GEMM.Kernel.supported { for (ta, tb) in Self.transposes { for threads in 1...3 {
            let r = problem.run(ta: ta, tb: tb, kernel: kernel, threads: threads)
            let bad = problem.violations(r)
            #expect(bad.count == 0, "\(kernel) \(shape) ta=\(ta) tb=\(tb) threads=\(threads): \(bad.first)")
        } } }
    }

    /// alpha, beta (0, 1 and general: each a different store path in the kernels) and leading
    /// dimensions larger than the rows: the padding must come back untouched.
    @Test(arguments: [(Float(2), Float(0.5)), (-1.5, 1), (0.25, 0), (1, -2)])
    func alphaBetaAndLeadingDimensions(coefficients: (Float, Float)) {
        let (alpha, beta) = coefficients
        let problem = GEMMProblem<Float>(m: 29, n: 45, k: 37, seed: 4)
        let wide = GEMMProblem<Double>(m: 27, n: 19, k: 41, seed: 5)
        for kernel in GEMM.Kernel.supported { for (ta, tb) in Self.transposes { for pad in [1, 3, 16] {
            let r = problem.run(ta: ta, tb: tb, alpha: alpha, beta: beta, pad: pad, kernel: kernel, threads: 2, seed: UInt64(pad))
            let bad = problem.violations(r, alpha: alpha, beta: beta)
            #expect(bad.count == 0, "\(kernel) f32 alpha=\(alpha) beta=\(beta) pad=\(pad) ta=\(ta) tb=\(tb): \(bad.first)")
            let (a64, b64) = (Double(alpha), Double(beta))
            let r64 = wide.run(ta: ta, tb: tb, alpha: a64, beta: b64, pad: pad, kernel: kernel, threads: 2, seed: UInt64(pad))
            let bad64 = wide.violations(r64, alpha: a64, beta: b64)
            #expect(bad64.count == 0, "\(kernel) f64 alpha=\(alpha) beta=\(beta) pad=\(pad) ta=\(ta) tb=\(tb): \(bad64.first)")
        } } }
    }

    /// k = 0 or alpha = 0: C = beta·C, and beta = 0 clears C even where it held NaN.
    @Test func emptySumsScaleC() {
        for kernel in GEMM.Kernel.supported {
            let a: [Float] = [1, 2, 3], b: [Float] = [4, 5, 6]
            var c: [Float] = [.nan, 2, 3, 4]
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                GEMM.multiply(m: 2, n: 2, k: 0, a: ap.baseAddress!, lda: 1, b: bp.baseAddress!, ldb: 2, beta: 0, c: cp.baseAddress!, ldc: 2, kernel: kernel)
            } } }
            #expect(c == [0, 0, 0, 0])
            c = [1, 2, 3, 4]
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                GEMM.multiply(m: 2, n: 2, k: 1, alpha: 0, a: ap.baseAddress!, lda: 1, b: bp.baseAddress!, ldb: 2, beta: 3, c: cp.baseAddress!, ldc: 2, kernel: kernel)
            } } }
            #expect(c == [3, 6, 9, 12])
        }
        #expect(matmul(Matrix<Float>(rows: 3, cols: 0), Matrix<Float>(rows: 0, cols: 2)) == Matrix<Float>(rows: 3, cols: 2))
    }

    /// A long sum (k = 70 000: hundreds of K slices) keeps the worst-case bound, and its error
    /// grows like √k, not k: the RMS of |ĉ − c| / √(Σ(a·b)²) stays below 2·u·√k (round-to-nearest
    /// errors are unbiased; about u·√(k/6) is expected). A sum that lost a term, ran in lower
    /// precision or summed the slices of K twice would be far outside both.
    @Test(arguments: [(5, 40, 70_000), (48, 40, 4_000)])
    func longSumsHaveSquareRootErrorGrowth(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        let problem = GEMMProblem<Float>(m: m, n: n, k: k, seed: 77)
        let u = Double(Float.unitRoundoff)
        for kernel in GEMM.Kernel.supported { for (ta, tb) in [(false, false), (true, true)] {
            let r = problem.run(ta: ta, tb: tb, kernel: kernel, threads: 2)
            let bad = problem.violations(r)
            #expect(bad.count == 0, "\(kernel) \(shape): \(bad.first)")
            var sum = 0.0
            for i in 0..<(m * n) {
                let e = Double(r.c[i]) - problem.value[i]
                sum += e * e / problem.squares[i]
            }
            let rms = (sum / Double(m * n)).squareRoot()
            #expect(rms <= 2 * u * Double(k).squareRoot(), "\(kernel) \(shape): rms \(rms / u) u, √k = \(Double(k).squareRoot())")
            #expect(rms > 0, "\(kernel) \(shape): no rounding at all is implausible for a Gaussian product")
        } }
    }

    /// Big products on several threads: the threads split C's blocks between them, and every
    /// element is still computed by exactly the same operations, so the result is bit-for-bit the
    /// one thread's. Checked against an f64 product (portable kernel, one thread, itself checked
    /// against the loops above) within the f32 bound.
    @Test(arguments: [(700, 650, 530), (2100, 300, 200), (40, 3000, 400)])
    func threadsGiveTheSameBits(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        var g = SeededGenerator(seed: UInt64(m + n + k))
        let a = RandomTensors.gaussianMatrix(rows: m, cols: k, using: &g, as: Float.self)
        let b = RandomTensors.gaussianMatrix(rows: k, cols: n, using: &g, as: Float.self)
        let a64: Matrix<Double> = a.converted(), b64: Matrix<Double> = b.converted()
        let exact = Self.product(a64, b64, kernel: .portable, threads: 1)
        let magnitude = Self.product(Self.absolute(a64), Self.absolute(b64), kernel: .portable, threads: 1)
        let u = Double(Float.unitRoundoff), gamma = Double(k + 3) * u / (1 - Double(k + 3) * u)
        for kernel in GEMM.Kernel.supported {
            let one = Self.product(a, b, kernel: kernel, threads: 1)
            var worst = 0.0
            for i in 0..<(m * n) { worst = max(worst, abs(Double(one.storage[i]) - exact.storage[i]) / (gamma * magnitude.storage[i])) }
            #expect(worst <= 1, "\(kernel) \(shape): error \(worst) of the bound")
            for threads in [2, 3, 5] {
                let many = Self.product(a, b, kernel: kernel, threads: threads)
                #expect(many.storage == one.storage, "\(kernel) \(shape) on \(threads) threads differs from one thread")
            }
            let f64 = Self.product(a64, b64, kernel: kernel, threads: 2)
            #expect(TestMatrices.relativeDifference(f64, exact) < 1e-14, "\(kernel) f64 \(shape)")
        }
        // The default path (automatic kernel and thread count) agrees too.
        #expect(matmul(a, b).storage == Self.product(a, b, kernel: .active, threads: 1).storage)
    }

    /// TLORA_SIMD and TLORA_DISABLE_SIMD choose the kernels of a new process: run tlora-bench with
    /// each (it prints the level it runs at) and compare with what this CPU supports.
    @Test func environmentSelectsTheKernels() throws {
        let bench = CommandRunner.executable + "-bench"  // next to the tlora executable
        let best = GEMM.Kernel.supported.last ?? .portable
        let cases: [([String: String], GEMM.Kernel)] = [
            ([:], best), (["TLORA_SIMD": "avx512"], best),
            (["TLORA_SIMD": "avx2"], GEMM.Kernel.avx2.isSupported ? .avx2 : .portable),
            (["TLORA_SIMD": "portable"], .portable), (["TLORA_DISABLE_SIMD": "1"], .portable),
            (["TLORA_SIMD": "avx2", "TLORA_DISABLE_SIMD": "1"], .portable),
        ]
        for (env, expected) in cases {
            var environment = env
            for key in ["TLORA_SIMD", "TLORA_DISABLE_SIMD"] where env[key] == nil { environment[key] = "" }
            let r = try CommandRunner.run(bench, ["gemm", "64", "48", "40"], environment: environment)
            #expect(r.status == 0, "\(env): \(r.stderr)")
            let first = r.stdout.split(separator: "\n").first.map(String.init) ?? ""
            #expect(first.hasPrefix("simd level: \(expected),"), "\(env): \(first)")
            let rate = r.stdout.split(separator: "\n").last.flatMap { Double($0) } ?? 0
            #expect(rate > 0, "\(env): \(r.stdout)")
        }
    }

    // MARK: helpers

    static func cpuFlags() -> Set<String>? {
        guard let f = fopen("/proc/cpuinfo", "r") else { return nil }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 1 << 16)
        while fgets(&line, Int32(line.count), f) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("flags") {
                return Set(text.split(separator: ":").dropFirst().joined().split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
            }
        }
        return nil
    }

    static func absolute(_ x: Matrix<Double>) -> Matrix<Double> {
        Matrix(rows: x.rows, cols: x.cols, storage: x.storage.map { abs($0) })
    }

    static func product<T: GEMMScalar>(_ a: Matrix<T>, _ b: Matrix<T>, kernel: GEMM.Kernel, threads: Int) -> Matrix<T> {
        var c = Matrix<T>(rows: a.rows, cols: b.cols)
        a.storage.withUnsafeBufferPointer { ap in b.storage.withUnsafeBufferPointer { bp in c.storage.withUnsafeMutableBufferPointer { cp in
            T.gemm(false, false, a.rows, b.cols, a.cols, 1, ap.baseAddress!, a.cols, bp.baseAddress!, b.cols, 0, cp.baseAddress!, b.cols, kernel, threads)
        } } }
        return c
    }
}
