import TLoRAIO
import TLoRANumerics

/// A tensor exactly as a file stores it: element type, shape (row-major, last index fastest) and
/// little-endian bytes. Adapters keep their tensors in this form so that import → export is
/// bit-exact; arithmetic converts to `Float`/`Double` on demand.
public struct StoredTensor: Sendable, Equatable {
    public let dtype: DType
    public let shape: [Int]
    public let bytes: TensorBytes

    /// Wraps bytes whose count must be `product(shape) × dtype.byteWidth`.
    public init(dtype: DType, shape: [Int], bytes: TensorBytes) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(shape.reduce(1, *) * dtype.byteWidth == bytes.count, "byte count \(bytes.count) does not match \(dtype) \(shape)")
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// Wraps owned bytes whose count must be `product(shape) × dtype.byteWidth`.
    public init(dtype: DType, shape: [Int], bytes: [UInt8]) {
        self.init(dtype: dtype, shape: shape, bytes: TensorBytes(bytes))
    }

    /// Stores `values` as `dtype` (rounding once to nearest even when narrowing).
    public init(_ values: [Float], shape: [Int], dtype: DType = .f32) {
        self.init(dtype: dtype, shape: shape, bytes: ElementConversion.bytes(from: values, as: dtype))
    }

    /// Stores `values` as `dtype` (f64 exact; f32 rounds once; f16/bf16 via f32).
    public init(_ values: [Double], shape: [Int], dtype: DType) {
        self.init(dtype: dtype, shape: shape, bytes: ElementConversion.bytes(from: values, as: dtype))
    }

    /// Stores a matrix as a 2-D tensor.
    public init<T: TLoRAFloat>(_ matrix: Matrix<T>, dtype: DType) {
        if let m = matrix as? Matrix<Double> {
            self.init(m.storage, shape: [m.rows, m.cols], dtype: dtype)
        } else {
            self.init(matrix.storage.map { Float($0) }, shape: [matrix.rows, matrix.cols], dtype: dtype)
        }
    }

    public var elementCount: Int { bytes.count / dtype.byteWidth }

    /// The values as `Float` (f64 values are rounded).
    public func floats() -> [Float] {
        bytes.withUnsafeBytes { ElementConversion.floats(from: $0, dtype: dtype) }
    }

    /// The values as `Double` (exact for every dtype).
    public func doubles() -> [Double] {
        bytes.withUnsafeBytes { ElementConversion.doubles(from: $0, dtype: dtype) }
    }

    /// The values as a `rows × cols` matrix in f64; the shape must be 2-D `[rows, cols]`.
    public func matrix() -> Matrix<Double> {
        precondition(shape.count == 2, "not a matrix: \(shape)")
        return Matrix(rows: shape[0], cols: shape[1], storage: doubles())
    }

    /// The values as an f64 tensor of the same shape.
    public func tensor() -> Tensor<Double> {
        Tensor(shape: shape, storage: doubles())
    }

    /// The same bytes under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> StoredTensor {
        StoredTensor(dtype: dtype, shape: newShape, bytes: bytes)
    }

    /// True when no element is NaN or ±∞.
    public var allFinite: Bool {
        switch dtype {
        case .f32:
            return bytes.withUnsafeBytes { raw in
                var i = 0
                while i + 4 <= raw.count {
                    if raw.loadUnaligned(fromByteOffset: i, as: UInt32.self) & 0x7F80_0000 == 0x7F80_0000 { return false }
                    i += 4
                }
                return true
            }
        case .f64:
            return bytes.withUnsafeBytes { raw in
                var i = 0
                while i + 8 <= raw.count {
                    if raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x7FF0_0000_0000_0000 == 0x7FF0_0000_0000_0000 { return false }
                    i += 8
                }
                return true
            }
        case .f16:
            return bytes.withUnsafeBytes { raw in
                var i = 0
                while i + 2 <= raw.count {
                    if raw.loadUnaligned(fromByteOffset: i, as: UInt16.self) & 0x7C00 == 0x7C00 { return false }
                    i += 2
                }
                return true
            }
        case .bf16:
            return bytes.withUnsafeBytes { raw in
                var i = 0
                while i + 2 <= raw.count {
                    if raw.loadUnaligned(fromByteOffset: i, as: UInt16.self) & 0x7F80 == 0x7F80 { return false }
                    i += 2
                }
                return true
            }
        }
    }
}

extension StoredTensor {
    /// The transpose of a 2-D tensor, element bytes moved unchanged (exact for every dtype).
    public func transposed() -> StoredTensor {
        precondition(shape.count == 2, "transpose of a non-matrix \(shape)")
        let (rows, cols, w) = (shape[0], shape[1], dtype.byteWidth)
        var out = [UInt8](repeating: 0, count: bytes.count)
        bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                for i in 0..<rows {
                    for j in 0..<cols {
                        let s = (i * cols + j) * w, d = (j * rows + i) * w
                        for k in 0..<w { dst[d + k] = src[s + k] }
                    }
                }
            }
        }
        return StoredTensor(dtype: dtype, shape: [cols, rows], bytes: out)
    }
}
