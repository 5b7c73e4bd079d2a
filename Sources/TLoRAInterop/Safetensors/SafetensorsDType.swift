import TLoRANumerics

/// The element types of the safetensors format.
public enum SafetensorsDType: String, Sendable, CaseIterable, Equatable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3", f8e8m0 = "F8_E8M0"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case f64 = "F64", i64 = "I64", u64 = "U64"

    /// Bytes per element.
    public var byteWidth: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3, .f8e8m0: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }

    /// The matching floating type tlora computes with, if any.
    public var floatType: DType? {
        switch self {
        case .f16: return .f16
        case .bf16: return .bf16
        case .f32: return .f32
        case .f64: return .f64
        default: return nil
        }
    }

    public init(_ dtype: DType) {
        switch dtype {
        case .f16: self = .f16
        case .bf16: self = .bf16
        case .f32: self = .f32
        case .f64: self = .f64
        }
    }
}
