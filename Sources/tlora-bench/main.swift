// tlora-bench: micro-benchmarks of tlora's kernels. Each subcommand prints its measurements and,
// as its last line, the headline number (GFLOP/s, milliseconds or GB/s).
//
//   tlora-bench gemm M N K [f32|f64]      GFLOP/s of C = A·B (best of several runs)
//   tlora-bench gemmcheck M N K           checks C = op(A)·op(B) against the error bound (exit 1 if not)
//   tlora-bench qr M N                    milliseconds of a thin Householder QR (f64)
//   tlora-bench svd M N                   milliseconds of a thin SVD (f64)
//   tlora-bench leftsvd M N               milliseconds of u, s and s·vᵀ without accumulating v (f64)
//   tlora-bench eig N                     milliseconds of a symmetric eigendecomposition (f64)
//   tlora-bench rsvd M N K                milliseconds of a rank-K randomized SVD (f64, p = 10, q = 2)
//   tlora-bench transpose M N             milliseconds of an f64 matrix transpose
//   tlora-bench decode FILE.tlora         GB/s of decoding every tensor on one thread
//   tlora-bench bank M OUT IN R D NOISE E one module of a synthetic adapter bank (seconds per phase, memory)
// `--check` (svd, eig, rsvd) adds a line of accuracy figures; TLORA_BENCH_SECONDS sets the budget.
import CTLoRAKernels
import TLoRAFormat
import TLoRAIO
import TLoRANumerics

#if canImport(Glibc)
import Glibc
#endif

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Seconds of repetitions per measurement (`TLORA_BENCH_SECONDS`, default 1): on a shared machine a
/// longer budget makes the best run more likely to be an undisturbed one.
let budget: Double = getenv("TLORA_BENCH_SECONDS").flatMap { Double(String(cString: $0)) } ?? 1.0

/// Best wall time of `body` over repetitions lasting at least `budget` seconds in total (at least
/// 3 runs, at most 200).
func best(_ body: () -> Void) -> Double {
    var bestTime = Double.infinity
    var total = 0.0, runs = 0
    while runs < 3 || (total < budget && runs < 200) {
        let t0 = now()
        body()
        let t = now() - t0
        bestTime = min(bestTime, t)
        total += t
        runs += 1
    }
    return bestTime
}

func randomMatrix<T: TLoRAFloat>(_ rows: Int, _ cols: Int, seed: UInt64, as: T.Type) -> Matrix<T> {
    var state = seed
    var m = Matrix<T>(rows: rows, cols: cols)
    for i in m.storage.indices {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        m.storage[i] = T(Double(Int64(bitPattern: state >> 11) % 2_000_001) / 1e6 - 1)
    }
    return m
}

/// max |aᵀa − I| over the columns of `a`.
func orthogonality(_ a: Matrix<Double>) -> Double {
    let g = matmul(a, a, transposeA: true)
    var worst = 0.0
    for i in 0..<g.rows { for j in 0..<g.cols { worst = max(worst, abs(g[i, j] - (i == j ? 1 : 0))) } }
    return worst
}

/// ‖x − y‖_F / ‖y‖_F.
func relative(_ x: Matrix<Double>, _ y: Matrix<Double>) -> Double {
    var num = 0.0, den = 0.0
    for i in x.storage.indices { let d = x.storage[i] - y.storage[i]; num += d * d; den += y.storage[i] * y.storage[i] }
    return (num / max(den, .leastNormalMagnitude)).squareRoot()
}

let args = Array(CommandLine.arguments.dropFirst())
func usage() -> Never {
    let text = "usage: tlora-bench gemm M N K [f32|f64] | gemmcheck M N K | qr M N | svd M N | leftsvd M N | eig N | rsvd M N K | transpose M N | decode FILE | bank MEMBERS OUT IN RANK SHARED NOISE E\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

func int(_ i: Int) -> Int {
    guard i < args.count, let v = Int(args[i]), v > 0 else { usage() }
    return v
}

let threadsNote = getenv("TLORA_THREADS").map { String(cString: $0) } ?? "\(sysconf(Int32(_SC_NPROCESSORS_ONLN)))"
print("simd level: \(GEMM.Kernel.active), threads: \(threadsNote)")
switch args.first {
case "gemm":
    let (m, n, k) = (int(1), int(2), int(3))
    let precision = args.count > 4 ? args[4] : "f32"
    let flops = 2.0 * Double(m) * Double(n) * Double(k)
    let t: Double
    if precision == "f64" {
        let a = randomMatrix(m, k, seed: 1, as: Double.self), b = randomMatrix(k, n, seed: 2, as: Double.self)
        t = best { _ = matmul(a, b) }
    } else {
        let a = randomMatrix(m, k, seed: 1, as: Float.self), b = randomMatrix(k, n, seed: 2, as: Float.self)
        t = best { _ = matmul(a, b) }
    }
    print("\(precision) gemm \(m)x\(n)x\(k): \(t * 1e3) ms")
    print(flops / t / 1e9)
case "gemmcheck":
    exit(gemmCheck(m: int(1), n: int(2), k: int(3)) ? 0 : 1)
case "qr", "svd", "leftsvd":
    let (m, n) = (int(1), int(2))
    let a = randomMatrix(m, n, seed: 3, as: Double.self)
    let t: Double
    switch args[0] {
    case "qr": t = best { _ = householderQR(a) }
    case "svd": t = best { _ = svd(a) }
    default:
        let tol = args.count > 3 ? Double(args[3]) : nil
        t = best { _ = leftSVD(a, orthogonality: tol) }
    }
    if args.contains("--check") && args[0] == "svd" {
        let r = svd(a)
        var us = r.u
        for i in 0..<us.rows { for j in 0..<us.cols { us[i, j] *= r.s[j] } }
        print("‖UᵀU − I‖max \(orthogonality(r.u))  ‖VᵀV − I‖max \(orthogonality(r.vt.transposed()))  ‖A − USVᵀ‖/‖A‖ \(relative(matmul(us, r.vt), a))")
    }
    print("f64 \(args[0]) \(m)x\(n) (thin, with U and V): \(t * 1e3) ms")
    print(t * 1e3)
case "transpose":
    let (m, n) = (int(1), int(2))
    let a = randomMatrix(m, n, seed: 9, as: Double.self)
    let t = best { _ = a.transposed() }
    print("f64 transpose \(m)x\(n): \(t * 1e3) ms, \(Double(m * n * 16) / t / 1e9) GB/s")
    print(t * 1e3)
case "rsvd":
    let (m, n, k) = (int(1), int(2), int(3))
    let a = randomMatrix(m, n, seed: 7, as: Double.self)
    let options = RandomizedSVDOptions(rank: k, oversampling: 10, powerIterations: 2, seed: 1)
    if args.contains("--check") {
        let r = randomizedSVD(a, options)
        print("estimated ‖A − USVᵀ‖_F/‖A‖_F \(r.estimatedError / a.frobeniusNorm), σ_1 \(r.svd.s.first ?? 0), σ_k \(r.svd.s.last ?? 0)")
    }
    let t = best { _ = randomizedSVD(a, options) }
    print("f64 randomized svd \(m)x\(n) rank \(k) (p = 10, q = 2): \(t * 1e3) ms")
    print(t * 1e3)
case "eig":
    let n = int(1)
    let x = randomMatrix(n, n, seed: 5, as: Double.self)
    var a = x
    for i in 0..<n { for j in 0..<n { a[i, j] = x[i, j] + x[j, i] } }
    if args.contains("--check") {
        let r = symmetricEigen(a)
        var vl = r.vectors
        for i in 0..<n { for j in 0..<n { vl[i, j] *= r.values[j] } }
        print("‖VᵀV − I‖max \(orthogonality(r.vectors))  ‖A − VΛVᵀ‖/‖A‖ \(relative(matmul(vl, r.vectors, transposeB: true), a))")
    }
    let t = best { _ = symmetricEigen(a) }
    print("f64 symmetric eigen \(n)x\(n) (values and vectors): \(t * 1e3) ms")
    print(t * 1e3)
case "bank":
    guard args.count == 8, let noise = Double(args[6]), let e = Double(args[7]) else { usage() }
    do { try bankBenchmark(members: int(1), out: int(2), in: int(3), rank: int(4), shared: int(5), noise: noise, bound: e) } catch { print("error: \(error)"); exit(1) }
case "decode":
    guard args.count == 2 else { usage() }
    do { try decodeBenchmark(path: args[1]) } catch { print("error: \(error)"); exit(1) }
default:
    usage()
}
