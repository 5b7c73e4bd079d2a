import CTLoRAKernels

/// A dense row-major matrix: element (i, j) lives at `storage[i * cols + j]`.
///
/// The element-moving helpers are `@inlinable` so that callers in other modules get code
/// specialized for their scalar type; unspecialized generic code copies every element through
/// value witnesses and ran ~10× slower (a 4096×512 transpose: 23 ms).
public struct Matrix<Scalar: TLoRAFloat>: Sendable, Equatable {
    public let rows: Int
    public let cols: Int
    public var storage: [Scalar]

    /// A matrix filled with `value`.
    @inlinable
    public init(rows: Int, cols: Int, repeating value: Scalar = 0) {
        precondition(rows >= 0 && cols >= 0, "negative matrix dimension")
        self.rows = rows
        self.cols = cols
        self.storage = [Scalar](repeating: value, count: rows * cols)
    }

    /// Wraps row-major `storage` (count must be `rows * cols`).
    @inlinable
    public init(rows: Int, cols: Int, storage: [Scalar]) {
        precondition(rows >= 0 && cols >= 0 && storage.count == rows * cols, "storage does not match \(rows)x\(cols)")
        self.rows = rows
        self.cols = cols
        self.storage = storage
    }

    /// The n×n identity.
    @inlinable
    public static func identity(_ n: Int) -> Matrix {
        var m = Matrix(rows: n, cols: n)
        for i in 0..<n { m.storage[i * n + i] = 1 }
        return m
    }

    @inlinable
    public subscript(row: Int, col: Int) -> Scalar {
        get { storage[row * cols + col] }
        set { storage[row * cols + col] = newValue }
    }

    /// A copy with rows and columns swapped (f32/f64 through a tiled SIMD kernel, written straight
    /// into uninitialized storage).
    @inlinable
    public func transposed() -> Matrix {
        let count = rows * cols
        if count == 0 { return Matrix(rows: cols, cols: rows) }
        let out = [Scalar](unsafeUninitializedCapacity: count) { dst, initialized in
            storage.withUnsafeBufferPointer { src in
                // Safe: count > 0, so both buffers are non-empty.
                MatrixKernels.transpose(rows: rows, cols: cols, src.baseAddress!, dst.baseAddress!)
            }
            initialized = count
        }
        return Matrix(rows: cols, cols: rows, storage: out)
    }

    /// Columns `range` as a new matrix.
    @inlinable
    public func columns(_ range: Range<Int>) -> Matrix {
        precondition(range.lowerBound >= 0 && range.upperBound <= cols)
        var out = Matrix(rows: rows, cols: range.count)
        let width = range.count
        if width == 0 { return out }
        storage.withUnsafeBufferPointer { src in
            out.storage.withUnsafeMutableBufferPointer { dst in
                for i in 0..<rows {
                    // Safe: rows > 0 here and width > 0, so both buffers are non-empty.
                    (dst.baseAddress! + i * width).update(from: src.baseAddress! + i * cols + range.lowerBound, count: width)
                }
            }
        }
        return out
    }

    /// Rows `range` as a new matrix.
    @inlinable
    public func rows(_ range: Range<Int>) -> Matrix {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows)
        return Matrix(rows: range.count, cols: cols, storage: Array(storage[(range.lowerBound * cols)..<(range.upperBound * cols)]))
    }

    /// Converts every element to another scalar type.
    @inlinable
    public func converted<T: TLoRAFloat>(to: T.Type = T.self) -> Matrix<T> {
        Matrix<T>(rows: rows, cols: cols, storage: storage.map { T($0) })
    }
}

/// Non-generic entry points for `Matrix`'s inlinable helpers.
@usableFromInline
enum MatrixKernels {
    /// dst (cols × rows) = srcᵀ (rows × cols), both row-major and dense.
    @usableFromInline
    static func transpose<T>(rows: Int, cols: Int, _ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>) {
        if T.self == Double.self {
            tlora_dtranspose(rows, cols, UnsafeRawPointer(src).assumingMemoryBound(to: Double.self), cols,
                             UnsafeMutableRawPointer(dst).assumingMemoryBound(to: Double.self), rows)
        } else if T.self == Float.self {
            tlora_stranspose(rows, cols, UnsafeRawPointer(src).assumingMemoryBound(to: Float.self), cols,
                             UnsafeMutableRawPointer(dst).assumingMemoryBound(to: Float.self), rows)
        } else {
            for i in 0..<rows { for j in 0..<cols { (dst + j * rows + i).initialize(to: src[i * cols + j]) } }
        }
    }
}
