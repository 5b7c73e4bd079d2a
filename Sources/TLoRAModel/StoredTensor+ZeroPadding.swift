extension StoredTensor {
    /// A row-major `r × n` matrix with zero rows appended up to `rows` (exact in every dtype): how a
    /// LoRA factor pair is padded to a larger rank without changing `B · A` (zero rows of `A`, zero
    /// columns of `B`).
    public func zeroPaddingRows(to rows: Int) -> StoredTensor {
        precondition(shape.count == 2 && rows >= shape[0], "zero padding needs a matrix with at most \(rows) rows")
        let extra = (rows - shape[0]) * shape[1] * dtype.byteWidth
        return StoredTensor(dtype: dtype, shape: [rows, shape[1]], bytes: bytes.array + [UInt8](repeating: 0, count: extra))
    }

    /// Both factors of `B · A` (`A` r × in, `B` out × r) zero-padded to rank `rank`.
    public static func zeroPaddingRank(a: StoredTensor, b: StoredTensor, to rank: Int) -> (a: StoredTensor, b: StoredTensor) {
        (a.zeroPaddingRows(to: rank), b.transposed().zeroPaddingRows(to: rank).transposed())
    }
}
