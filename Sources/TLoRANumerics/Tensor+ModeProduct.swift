extension Tensor {
    /// The n-mode product `self ×_n m` for `m` of shape J × I_n: mode n's extent becomes J and
    ///
    ///     (self ×_n m)[i_0, …, j, …, i_{N−1}] = Σ_i m[j, i] · self[i_0, …, i, …, i_{N−1}],
    ///
    /// i.e. `(self ×_n m)_(n) = m · self_(n)`. No unfolding is formed: viewing the tensor as
    /// [before, I_n, after] (row-major), mode 0 is one GEMM `m · T` (T as I_n × after), the last
    /// mode one GEMM `T · mᵀ` (T as before × I_n), and a middle mode one GEMM `m · T_b` per leading
    /// index b on views of the storage.
    /// - Complexity: 2·J·count flops; memory: the result only.
    public func modeProduct(_ m: Matrix<Scalar>, mode n: Int) -> Tensor {
        precondition(n >= 0 && n < rank, "modeProduct: mode \(n) of a rank-\(rank) tensor")
        precondition(m.cols == shape[n], "modeProduct: a \(m.rows)×\(m.cols) matrix cannot multiply mode \(n) of extent \(shape[n])")
        let before = shape[..<n].reduce(1, *), after = shape[(n + 1)...].reduce(1, *)
        let i = shape[n], j = m.rows
        var outShape = shape
        outShape[n] = j
        let total = before * j * after
        guard before > 0, after > 0, i > 0, j > 0 else { return Tensor(shape: outShape, repeating: 0) }
        // GEMM with β = 0 writes every output element without reading it: no zero-fill needed.
        let out = [Scalar](unsafeUninitializedCapacity: total) { dst, initialized in
            storage.withUnsafeBufferPointer { src in
                m.storage.withUnsafeBufferPointer { mp in
                    // Safe: all extents are positive, so no buffer is empty.
                    let S = src.baseAddress!, M = mp.baseAddress!, D = dst.baseAddress!
                    if after == 1 {
                        gemm(transposeB: true, m: before, n: j, k: i, a: S, lda: i, b: M, ldb: i, c: D, ldc: j)
                    } else {
                        for b in 0..<before {
                            gemm(m: j, n: after, k: i, a: M, lda: i, b: S + b * i * after, ldb: after, c: D + b * j * after, ldc: after)
                        }
                    }
                }
            }
            initialized = total
        }
        return Tensor(shape: outShape, storage: out)
    }
}

/// `C = op(A)·op(B)` through GEMM for either scalar type.
@inline(__always)
func gemm<T: TLoRAFloat>(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
                         a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int, c: UnsafeMutablePointer<T>, ldc: Int) {
    if T.self == Double.self {
        GEMM.multiply(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                      a: UnsafeRawPointer(a).assumingMemoryBound(to: Double.self), lda: lda,
                      b: UnsafeRawPointer(b).assumingMemoryBound(to: Double.self), ldb: ldb,
                      c: UnsafeMutableRawPointer(c).assumingMemoryBound(to: Double.self), ldc: ldc)
    } else if T.self == Float.self {
        GEMM.multiply(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                      a: UnsafeRawPointer(a).assumingMemoryBound(to: Float.self), lda: lda,
                      b: UnsafeRawPointer(b).assumingMemoryBound(to: Float.self), ldb: ldb,
                      c: UnsafeMutableRawPointer(c).assumingMemoryBound(to: Float.self), ldc: ldc)
    } else {
        preconditionFailure("gemm: unsupported scalar \(T.self)")
    }
}
