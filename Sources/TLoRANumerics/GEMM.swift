import CTLoRAKernels
import CTLoRASystem

/// General matrix multiply on row-major storage: `C = alpha · op(A) · op(B) + beta · C`.
///
/// Packed panels, cache blocking and a register-tiled micro-kernel (f32 6×16, f64 6×8) in C, chosen
/// at run time: AVX2+FMA where the CPU has it, a portable tile otherwise (`TLORA_DISABLE_SIMD=1`
/// forces it). Big products are split over all cores by rows of C.
///
/// Error: each element is a dot product of length k accumulated in the element type, so
/// |C − C_exact| ≤ γ_k · |A|·|B| with γ_k ≈ k·u (u = 2⁻²⁴ for f32, 2⁻⁵³ for f64); in practice
/// ~√k·u·‖a_i‖‖b_j‖ for random data.
public enum GEMM {
    /// Products below this many multiply-adds run on one thread.
    public static let parallelThreshold = 1 << 21

    public static func multiply(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
                                alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        var status = tlora_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads(m, n, k))
        if status == -2 { status = tlora_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 1) }
        precondition(status == 0, "GEMM could not allocate its packing buffers")
    }

    public static func multiply(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
                                alpha: Double = 1, a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                                beta: Double = 0, c: UnsafeMutablePointer<Double>, ldc: Int) {
        var status = tlora_dgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads(m, n, k))
        if status == -2 { status = tlora_dgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 1) }
        precondition(status == 0, "GEMM could not allocate its packing buffers")
    }

    /// One thread for small products (starting threads costs ~50 µs), all cores for big ones.
    static func threads(_ m: Int, _ n: Int, _ k: Int) -> Int32 {
        let work = m.multipliedReportingOverflow(by: n).partialValue.multipliedReportingOverflow(by: max(k, 1)).partialValue
        return work < parallelThreshold ? 1 : Int32(Parallel.coreCount)
    }
}

/// `op(a) · op(b)` as a new matrix.
public func matmul<T: TLoRAFloat>(_ a: Matrix<T>, _ b: Matrix<T>, transposeA: Bool = false, transposeB: Bool = false) -> Matrix<T> {
    let m = transposeA ? a.cols : a.rows, k = transposeA ? a.rows : a.cols
    let n = transposeB ? b.rows : b.cols
    precondition(k == (transposeB ? b.cols : b.rows), "matmul: inner dimensions \(k) and \(transposeB ? b.cols : b.rows) differ")
    var c = Matrix<T>(rows: m, cols: n)
    if m == 0 || n == 0 { return c }
    a.storage.withUnsafeBufferPointer { ap in
        b.storage.withUnsafeBufferPointer { bp in
            c.storage.withUnsafeMutableBufferPointer { cp in
                if T.self == Float.self {
                    GEMM.multiply(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                  a: UnsafeRawPointer(ap.baseAddress!).assumingMemoryBound(to: Float.self), lda: max(a.cols, 1),  // safe: m, n > 0
                                  b: UnsafeRawPointer(bp.baseAddress!).assumingMemoryBound(to: Float.self), ldb: max(b.cols, 1),
                                  c: UnsafeMutableRawPointer(cp.baseAddress!).assumingMemoryBound(to: Float.self), ldc: n)
                } else {
                    GEMM.multiply(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                  a: UnsafeRawPointer(ap.baseAddress!).assumingMemoryBound(to: Double.self), lda: max(a.cols, 1),  // safe: m, n > 0
                                  b: UnsafeRawPointer(bp.baseAddress!).assumingMemoryBound(to: Double.self), ldb: max(b.cols, 1),
                                  c: UnsafeMutableRawPointer(cp.baseAddress!).assumingMemoryBound(to: Double.self), ldc: n)
                }
            }
        }
    }
    return c
}

enum Parallel {
    /// Worker threads for kernels: the online processors (or `TLORA_THREADS`), and 1 when the
    /// caller is itself one of several parallel workers.
    static var coreCount: Int { tlora_worker_depth() > 0 ? 1 : machineCores }

    static let machineCores: Int = {
        #if canImport(Glibc)
        if let v = getenv("TLORA_THREADS"), let n = Int(String(cString: v)), n >= 1 { return n }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 1
        #endif
    }()
}

#if canImport(Glibc)
import Glibc
#endif
