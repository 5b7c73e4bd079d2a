import TLoRANumerics

/// The tensor algebra the converters use, on TLoRANumerics' kernels (row-major tensors, last index
/// fastest; unfolding convention in `Tensor+Unfold.swift`). A facade, like `LA`, so the algorithms
/// read the same whichever kernels sit underneath.
enum TensorOps {
    /// `t ×_mode m` with `m` of shape `J × I_mode`: dimension `mode` becomes `J` (GEMMs on views).
    static func modeProduct(_ t: Tensor<Double>, _ m: Matrix<Double>, mode: Int) -> Tensor<Double> {
        t.modeProduct(m, mode: mode)
    }

    /// The tensor with its axes reordered: result axis k is input axis `axes[k]`.
    static func permute(_ t: Tensor<Double>, axes: [Int]) -> Tensor<Double> { t.permuted(axes) }

    /// Mode-`n` unfolding: rows are indices of mode `n`, columns the other indices in their
    /// original order (last fastest).
    static func unfold(_ t: Tensor<Double>, mode: Int) -> Matrix<Double> { t.unfolded(mode: mode) }

    /// ‖t‖_F.
    static func norm(_ t: Tensor<Double>) -> Double { t.frobeniusNorm }

    /// ‖a − b‖_F without forming the difference.
    static func distance(_ a: Tensor<Double>, _ b: Tensor<Double>) -> Double { frobeniusDistance(a, b) }

    /// ⟨a, b⟩.
    static func inner(_ a: Tensor<Double>, _ b: Tensor<Double>) -> Double { innerProduct(a, b) }
}
