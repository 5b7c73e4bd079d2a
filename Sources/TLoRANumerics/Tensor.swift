/// A dense tensor in row-major (C) order: the last index varies fastest.
public struct Tensor<Scalar: TLoRAFloat>: Sendable, Equatable {
    public let shape: [Int]
    public var storage: [Scalar]

    @inlinable
    public init(shape: [Int], repeating value: Scalar = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative tensor dimension")
        self.shape = shape
        self.storage = [Scalar](repeating: value, count: shape.reduce(1, *))
    }

    @inlinable
    public init(shape: [Int], storage: [Scalar]) {
        precondition(shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == storage.count, "storage does not match shape \(shape)")
        self.shape = shape
        self.storage = storage
    }

    public var rank: Int { shape.count }
    public var count: Int { storage.count }

    /// The same elements under a new shape with the same element count.
    @inlinable
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, storage: storage)
    }

    /// Views a matrix as a 2-D tensor.
    @inlinable
    public init(_ matrix: Matrix<Scalar>) {
        self.init(shape: [matrix.rows, matrix.cols], storage: matrix.storage)
    }

    /// The elements as a `rows × cols` matrix (row-major reinterpretation, no copy of semantics).
    @inlinable
    public func asMatrix(rows: Int, cols: Int) -> Matrix<Scalar> {
        Matrix(rows: rows, cols: cols, storage: storage)
    }
}
