// tlora-bench: micro-benchmarks of tlora's kernels. Each subcommand prints its measurements and,
// as its last line, the headline number (GFLOP/s, milliseconds or GB/s).
//
//   tlora-bench gemm M N K [f32|f64]      GFLOP/s of C = A·B (best of several runs)
//   tlora-bench gemmcheck M N K           checks C = op(A)·op(B) against the error bound (exit 1 if not)
//   tlora-bench qr M N                    milliseconds of a thin Householder QR (f64)
//   tlora-bench svd M N                   milliseconds of a thin SVD (f64)
//   tlora-bench leftsvd M N               milliseconds of u, s and s·vᵀ without accumulating v (f64)
//   tlora-bench decode FILE.tlora         GB/s of decoding every tensor on one thread
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

/// Best wall time of `body` over repetitions lasting at least ~1 s in total (at least 3 runs).
func best(_ body: () -> Void) -> Double {
    var bestTime = Double.infinity
    var total = 0.0, runs = 0
    while runs < 3 || (total < 1.0 && runs < 50) {
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

let args = Array(CommandLine.arguments.dropFirst())
func usage() -> Never {
    let text = "usage: tlora-bench gemm M N K [f32|f64] | gemmcheck M N K | qr M N | svd M N | decode FILE\n"
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
    print("f64 \(args[0]) \(m)x\(n) (thin, with U and V): \(t * 1e3) ms")
    print(t * 1e3)
default:
    usage()
}
