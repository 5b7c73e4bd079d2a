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

    /// True when no element is NaN or ±∞ (an element is either when its exponent bits are all ones).
    public var allFinite: Bool {
        switch dtype {
        case .f32: return noElement(as: UInt32.self, hasAllOf: 0x7F80_0000)
        case .f64: return noElement(as: UInt64.self, hasAllOf: 0x7FF0_0000_0000_0000)
        case .f16: return noElement(as: UInt16.self, hasAllOf: 0x7C00)
        case .bf16: return noElement(as: UInt16.self, hasAllOf: 0x7F80)
        }
    }

    /// Whether no little-endian element of width `W` has every bit of `mask` set.
    @inline(__always)
    private func noElement<W: FixedWidthInteger>(as _: W.Type, hasAllOf mask: W) -> Bool {
        bytes.withUnsafeBytes { raw in
            let width = MemoryLayout<W>.size
            var i = 0
            while i + width <= raw.count {
                if W(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: W.self)) & mask == mask { return false }
                i += width
            }
            return true
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
