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
