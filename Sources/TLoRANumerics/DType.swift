/// The floating-point element types tlora stores and computes with.
///
/// Values are always little-endian in memory buffers that cross a file boundary.
public enum DType: String, Sendable, CaseIterable, Hashable, Codable {
    case f32, f64, f16, bf16

    /// Bytes per element.
    public var byteWidth: Int {
        switch self {
        case .f64: return 8
        case .f32: return 4
        case .f16, .bf16: return 2
        }
    }

    /// Relative error of rounding a value to this type (half the spacing of the numbers near 1):
    /// 2⁻⁵³, 2⁻²⁴, 2⁻¹¹, 2⁻⁸. No stored result can be closer to its source than this, relatively.
    public var unitRoundoff: Double {
        switch self {
        case .f64: return 0x1p-53
        case .f32: return 0x1p-24
        case .f16: return 0x1p-11
        case .bf16: return 0x1p-8
        }
    }
}

/// The scalar types the kernels are generic over.
public protocol TLoRAFloat: BinaryFloatingPoint, Sendable where Self.RawSignificand: FixedWidthInteger {
    /// Unit roundoff (half the machine epsilon): 2⁻²⁴ for `Float`, 2⁻⁵³ for `Double`.
    static var unitRoundoff: Self { get }
}

extension Float: TLoRAFloat {
    public static var unitRoundoff: Float { Float.ulpOfOne / 2 }
}

extension Double: TLoRAFloat {
    public static var unitRoundoff: Double { Double.ulpOfOne / 2 }
}
