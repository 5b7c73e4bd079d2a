/// Mode-n unfolding and folding.
///
/// Convention: the mode-n unfolding `X_(n)` of a tensor of shape (I_0, …, I_{N−1}) is the
/// I_n × (∏_{k≠n} I_k) matrix with element (i_0, …, i_{N−1}) in row i_n and in the column given by
/// the remaining indices (i_0, …, i_{n−1}, i_{n+1}, …, i_{N−1}) in row-major order — the last index
/// runs fastest, as everywhere in tlora. Kolda & Bader (2009) let the first remaining index run
/// fastest instead; the two unfoldings differ only by a fixed permutation of columns, so their
/// column spaces, singular values and left singular vectors (what HOSVD uses) are the same.
extension Tensor {
    /// `X_(n)`: rows indexed by mode n, columns by the other modes in their order (last fastest).
    /// Mode 0 is a reinterpretation of the storage; other modes cost one permutation.
    public func unfolded(mode n: Int) -> Matrix<Scalar> {
        precondition(n >= 0 && n < rank, "unfolded: mode \(n) of a rank-\(rank) tensor")
        let rows = shape[n]
        let cols = rows == 0 ? shape.enumerated().filter { $0.offset != n }.reduce(1) { $0 * $1.element } : count / rows
        if n == 0 { return Matrix(rows: rows, cols: cols, storage: storage) }
        let axes = [n] + (0..<rank).filter { $0 != n }
        return Matrix(rows: rows, cols: cols, storage: permuted(axes).storage)
    }

    /// The inverse of `unfolded(mode:)`: the tensor of `shape` whose mode-n unfolding is `m`.
    public init(folding m: Matrix<Scalar>, mode n: Int, shape: [Int]) {
        precondition(n >= 0 && n < shape.count && m.rows == shape[n] && m.rows * m.cols == shape.reduce(1, *),
                     "folding: a \(m.rows)×\(m.cols) matrix is not a mode-\(n) unfolding of \(shape)")
        if n == 0 {
            self.init(shape: shape, storage: m.storage)
            return
        }
        // The unfolding is the tensor permuted to [n, others…]; undo that permutation.
        let unfoldedShape = [shape[n]] + shape.enumerated().filter { $0.offset != n }.map(\.element)
        var inverse = [Int](repeating: 0, count: shape.count)
        for (k, axis) in ([n] + (0..<shape.count).filter { $0 != n }).enumerated() { inverse[axis] = k }
        self = Tensor(shape: unfoldedShape, storage: m.storage).permuted(inverse)
    }
}
