import TLoRANumerics

/// Tensor algebra in f64 (row-major tensors, last index fastest).
enum TensorOps {
    /// `t ×_mode m` with `m` of shape `J × I_mode`: dimension `mode` becomes `J`.
    /// With `t` viewed as [before, I, after]: one GEMM `(before·I… )` when `after` = 1
    /// (`t · mᵀ`), else one GEMM `m · t_b` per leading index b.
    static func modeProduct(_ t: Tensor<Double>, _ m: Matrix<Double>, mode: Int) -> Tensor<Double> {
        let shape = t.shape
        precondition(m.cols == shape[mode], "mode product: \(m.cols) ≠ \(shape[mode])")
        let before = shape[..<mode].reduce(1, *), after = shape[(mode + 1)...].reduce(1, *)
        let i = shape[mode], j = m.rows
        var outShape = shape
        outShape[mode] = j
        var out = [Double](repeating: 0, count: before * j * after)
        guard before > 0, after > 0, i > 0, j > 0 else { return Tensor(shape: outShape, storage: out) }
        t.storage.withUnsafeBufferPointer { src in
            m.storage.withUnsafeBufferPointer { mp in
                out.withUnsafeMutableBufferPointer { dst in
                    // Safe: all extents are positive, so no buffer is empty.
                    if after == 1 {
                        GEMM.multiply(transposeB: true, m: before, n: j, k: i, a: src.baseAddress!, lda: i, b: mp.baseAddress!, ldb: i,
                                      c: dst.baseAddress!, ldc: j)
                    } else {
                        for b in 0..<before {
                            GEMM.multiply(m: j, n: after, k: i, a: mp.baseAddress!, lda: i, b: src.baseAddress! + b * i * after, ldb: after,
                                          c: dst.baseAddress! + b * j * after, ldc: after)
                        }
                    }
                }
            }
        }
        return Tensor(shape: outShape, storage: out)
    }

    /// The tensor with its axes reordered: result axis k is input axis `axes[k]`.
    static func permute(_ t: Tensor<Double>, axes: [Int]) -> Tensor<Double> {
        let shape = t.shape
        let newShape = axes.map { shape[$0] }
        var strides = [Int](repeating: 1, count: shape.count)
        if shape.count > 1 { for k in stride(from: shape.count - 2, through: 0, by: -1) { strides[k] = strides[k + 1] * shape[k + 1] } }
        var out = [Double](repeating: 0, count: t.count)
        var index = [Int](repeating: 0, count: shape.count)
        for flat in 0..<t.count {
            var src = 0
            for (k, axis) in axes.enumerated() { src += index[k] * strides[axis] }
            out[flat] = t.storage[src]
            var k = newShape.count - 1
            while k >= 0 {
                index[k] += 1
                if index[k] < newShape[k] { break }
                index[k] = 0
                k -= 1
            }
        }
        return Tensor(shape: newShape, storage: out)
    }

    /// Mode-`n` unfolding: rows are indices of mode `n`, columns the other indices in their
    /// original order (last fastest).
    static func unfold(_ t: Tensor<Double>, mode: Int) -> Matrix<Double> {
        let axes = [mode] + t.shape.indices.filter { $0 != mode }
        let p = permute(t, axes: axes)
        return Matrix(rows: t.shape[mode], cols: t.count / max(t.shape[mode], 1), storage: p.storage)
    }

    /// ‖t‖_F.
    static func norm(_ t: Tensor<Double>) -> Double { ErrorMeasure.frobenius(t.storage) }
}
