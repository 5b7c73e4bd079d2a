import CTLoRAKernels
import CTLoRASystem

/// General matrix multiply on row-major storage: `C = alpha · op(A) · op(B) + beta · C`.
///
/// Packed panels, cache blocking and a register-tiled micro-kernel in C, chosen at run time
/// (`GEMM.Kernel`): AVX-512 (f32 12×32, f64 12×16 tiles), AVX2+FMA (6×16, 6×8) or portable code.
/// Big products run on all cores, which share each packed panel of A and take blocks of C from a
/// common counter. Layout and blocking: docs/NUMERICS.md, "GEMM".
///
/// Error: each element is a dot product of length k accumulated in the element type, so
/// |C − C_exact| ≤ γ_k · |A|·|B| with γ_k ≈ k·u (u = 2⁻²⁴ for f32, 2⁻⁵³ for f64); in practice
/// ~√k·u·‖a_i ∘ b_j‖ for random data.
public enum GEMM {
    /// Products below this many multiply-adds run on one thread.
    public static let parallelThreshold = 1 << 21

    /// `c[i·ldc + j] = alpha · Σ_p op(a)[i, p] · op(b)[p, j] + beta · c[i·ldc + j]` for i < m, j < n.
    ///
    /// - Parameters:
    ///   - transposeA: `a` holds op(A)ᵀ (k×m, leading dimension `lda`) instead of op(A) (m×k).
    ///   - transposeB: `b` holds op(B)ᵀ (n×k) instead of op(B) (k×n).
    ///   - beta: 0 means `c` is only written (it may hold NaN).
    ///   - kernel: the micro-kernels to use; nil picks `Kernel.active`. Must be supported.
    ///   - threads: how many threads may work on it; nil picks one for small products and all
    ///     cores (`TLORA_THREADS`) for big ones.
    /// - Complexity: 2·m·n·k floating-point operations.
    public static func multiply(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
                                alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                                kernel: Kernel? = nil, threads: Int? = nil) {
        check(transposeA, transposeB, m, n, k, lda, ldb, ldc, kernel)
        let status = tlora_sgemm_level((kernel ?? .active).rawValue, transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k,
                                       alpha, a, lda, b, ldb, beta, c, ldc, threadCount(m, n, k, threads))
        precondition(status == 0, "GEMM could not allocate its packing buffers")
    }

    /// The f64 version of `multiply`; see there.
    public static func multiply(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
                                alpha: Double = 1, a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                                beta: Double = 0, c: UnsafeMutablePointer<Double>, ldc: Int,
                                kernel: Kernel? = nil, threads: Int? = nil) {
        check(transposeA, transposeB, m, n, k, lda, ldb, ldc, kernel)
        let status = tlora_dgemm_level((kernel ?? .active).rawValue, transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k,
                                       alpha, a, lda, b, ldb, beta, c, ldc, threadCount(m, n, k, threads))
        precondition(status == 0, "GEMM could not allocate its packing buffers")
    }

    /// Shapes come from the caller's code, not from files: a violation is a programming error. A
    /// leading dimension matters only when the stored matrix has more than one row.
    static func check(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ lda: Int, _ ldb: Int, _ ldc: Int,
                      _ kernel: Kernel?) {
        precondition(m >= 0 && n >= 0 && k >= 0, "GEMM: negative size \(m)×\(n)×\(k)")
        precondition((ta ? k : m) <= 1 || lda >= (ta ? m : k), "GEMM: lda \(lda) is below the row length")
        precondition((tb ? n : k) <= 1 || ldb >= (tb ? k : n), "GEMM: ldb \(ldb) is below the row length")
        precondition(m <= 1 || ldc >= n, "GEMM: ldc \(ldc) is below the row length \(n)")
        if let kernel { precondition(kernel.isSupported, "GEMM: this CPU cannot run the \(kernel) kernels") }
    }

    /// One thread for small products (waking the team costs µs), all cores for big ones.
    static func threadCount(_ m: Int, _ n: Int, _ k: Int, _ requested: Int?) -> Int32 {
        if let requested { return Int32(clamping: max(1, requested)) }
        let (mn, o1) = m.multipliedReportingOverflow(by: n)
        let (work, o2) = mn.multipliedReportingOverflow(by: max(k, 1))
        return !o1 && !o2 && work < parallelThreshold ? 1 : Int32(clamping: Parallel.workerCount)
    }
}

/// `op(a) · op(b)` as a new matrix.
public func matmul<T: TLoRAFloat>(_ a: Matrix<T>, _ b: Matrix<T>, transposeA: Bool = false, transposeB: Bool = false) -> Matrix<T> {
    let m = transposeA ? a.cols : a.rows, k = transposeA ? a.rows : a.cols
    let n = transposeB ? b.rows : b.cols
    precondition(k == (transposeB ? b.cols : b.rows), "matmul: inner dimensions \(k) and \(transposeB ? b.cols : b.rows) differ")
    if m == 0 || n == 0 { return Matrix(rows: m, cols: n) }
    let (count, overflow) = m.multipliedReportingOverflow(by: n)
    precondition(!overflow, "matmul: \(m)×\(n) elements overflow")
    // GEMM with beta = 0 writes every element (zeros when k = 0), so the result is not cleared
    // first: for big products that pass over fresh pages costs as much as a few percent of it.
    let storage = [T](unsafeUninitializedCapacity: count) { cp, initialized in
        // Big results are fresh pages: have them faulted in 2 MiB at a time.
        tlora_advise_huge_pages(cp.baseAddress, count * MemoryLayout<T>.stride)
        a.storage.withUnsafeBufferPointer { ap in
            b.storage.withUnsafeBufferPointer { bp in
                // Safe: m, n > 0, so c has elements; a and b may be empty only when k = 0, and
                // then GEMM reads neither (a dangling-but-non-nil pointer is never dereferenced).
                let aBase = UnsafeRawPointer(ap.baseAddress ?? UnsafePointer(bitPattern: 64)!)
                let bBase = UnsafeRawPointer(bp.baseAddress ?? UnsafePointer(bitPattern: 64)!)
                let cBase = UnsafeMutableRawPointer(cp.baseAddress!)
                if T.self == Float.self {
                    GEMM.multiply(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                  a: aBase.assumingMemoryBound(to: Float.self), lda: max(a.cols, 1),
                                  b: bBase.assumingMemoryBound(to: Float.self), ldb: max(b.cols, 1),
                                  c: cBase.assumingMemoryBound(to: Float.self), ldc: n)
                } else {
                    GEMM.multiply(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                  a: aBase.assumingMemoryBound(to: Double.self), lda: max(a.cols, 1),
                                  b: bBase.assumingMemoryBound(to: Double.self), ldb: max(b.cols, 1),
                                  c: cBase.assumingMemoryBound(to: Double.self), ldc: n)
                }
            }
        }
        initialized = count
    }
    return Matrix(rows: m, cols: n, storage: storage)
}

#if canImport(Glibc)
import Glibc
#endif
