import TLoRAIO
import TLoRAModel
import TLoRANumerics

extension StackedTucker {
    /// ST-HOSVD of the stacked tensor with the column and row modes truncated from the members'
    /// factors, never from an unfolding of the core: the same factors, core and tails as
    /// `SmallTucker.sthosvd(core, …)` up to rounding (and to the choice of singular vectors within
    /// repeated singular values), at a fraction of the cost.
    ///
    /// Why it is exact: member `l`'s slice is `C_l = Σ_r rows_l[…, r] · cols_l[r, in]`. For the
    /// column mode, the unfolding is `[cols_1ᵀ rows_1ᵀ, …]` (columns permuted); with the thin QR
    /// `rows_l = Q_l T_l` (rows flattened), each block is `cols_lᵀ T_lᵀ · Q_lᵀ` and the `Q_lᵀ`
    /// together form a matrix with orthonormal rows, so the unfolding has the left singular vectors
    /// and values of the small `K = [cols_1ᵀ T_1ᵀ, …]` (`k_in × Σ r_l`). For row mode `j`, with
    /// `cols_lᵀ = Q̃_l T̃_l`, the same argument gives `K_j = [unfold_j(rows_l ×_r T̃_l), …]`. Each
    /// truncation then projects the members' factors, as ST-HOSVD projects the core. The member
    /// modes come last: their unfoldings of the projected core are reduced by a QR of their
    /// transposes, slab by slab (TSQR), whose triangle has the unfolding's left singular vectors
    /// and values.
    ///
    /// - Returns: the factors in the bases' coordinates (every mode), the core as the projected
    /// members with the member factors still to apply (`TruncatedCore`), and each mode's tail.
    /// - Complexity: one SVD of `k × Σ r_l` per column/row mode instead of one of `k × (size/k)`;
    ///   memory: the factors and the truncated core, plus a few slabs of the projected core.
    func factoredSTHOSVD(tolerance: Double, ranks: [Int]?, maxRank: Int) -> (factors: [Matrix<Double>], core: TruncatedCore, tails: [Double]) {
        let rowCount = rowModeCount
        var rows = members.map(\.rows)
        var cols = members.map(\.cols)  // r × k_in
        var factors: [Matrix<Double>] = []
        var tails: [Double] = []

        func truncate(_ k: Matrix<Double>, mode n: Int) -> Matrix<Double> {
            let (u, tail) = SmallTucker.modeFactor(k, mode: n, tolerance: tolerance, ranks: ranks, maxRank: maxRank)
            tails.append(tail)
            return u
        }

        // Column mode (`in`).
        let kIn = cols.first?.cols ?? 0
        let inBlocks = zip(rows, cols).map { r, c -> Matrix<Double> in
            let t = LA.qr(Matrix(rows: r.count / c.rows, cols: c.rows, storage: r.storage)).r
            return LA.mul(c, t, ta: true, tb: true)  // k_in × k
        }
        let uIn = truncate(Self.concatenatingColumns(inBlocks, rows: kIn), mode: 0)
        factors.append(uIn)
        cols = cols.map { LA.mul($0, uIn) }  // r × R_in

        // Row modes, in order. `cols` no longer changes, so its triangles serve every row mode.
        let colTriangles = cols.map { LA.qr($0.transposed()).r }  // colsᵀ = Q̃ T̃
        for j in 0..<rowCount {
            let blocks = zip(rows, colTriangles).map { r, t in
                TensorOps.unfold(TensorOps.modeProduct(r, t, mode: rowCount), mode: j)
            }
            let u = truncate(Self.concatenatingColumns(blocks, rows: rows[0].shape[j]), mode: 1 + j)
            factors.append(u)
            let ut = u.transposed()
            rows = rows.map { TensorOps.modeProduct($0, ut, mode: j) }
        }

        // The member modes on the projected core [R_in, R_rows…, members…], streamed in slabs of
        // the `in` index from the projected factors: the core is never held whole before its
        // member modes are truncated.
        let projected = ProjectedCore(rows: rows, cols: cols, offsets: members.map(\.offset), memberDims: memberDims)
        var memberFactors: [Matrix<Double>] = []
        for n in 0..<memberDims.count {
            let r = projected.memberTriangle(mode: n, applying: memberFactors)
            memberFactors.append(truncate(r.transposed(), mode: 1 + rowCount + n))
        }
        factors += memberFactors
        return (factors, TruncatedCore(projected: projected, memberFactors: memberFactors), tails)
    }

    /// `[b_1 b_2 …]`, each `rows × c_i`.
    static func concatenatingColumns(_ blocks: [Matrix<Double>], rows: Int) -> Matrix<Double> {
        let total = blocks.reduce(0) { $0 + $1.cols }
        var m = Matrix<Double>(rows: rows, cols: total)
        var c0 = 0
        for b in blocks {
            for i in 0..<rows { for j in 0..<b.cols { m[i, c0 + j] = b[i, j] } }
            c0 += b.cols
        }
        return m
    }
}

/// The projected core `P` (`[R_in, R_rows…, members…]`, member index fastest) as the members'
/// projected factors, materialized a slab of `in` indices at a time.
struct ProjectedCore {
    let rows: [Tensor<Double>]
    let cols: [Matrix<Double>]
    let offsets: [Int]
    let memberDims: [Int]
    var rIn: Int { cols.first?.cols ?? 0 }
    var rowShape: [Int] { rows.first.map { Array($0.shape.dropLast()) } ?? [] }
    var rowCount: Int { rowShape.reduce(1, *) }
    var memberStride: Int { memberDims.reduce(1, *) }

    /// `in` indices per slab: about 4 MiB of doubles.
    var slabSize: Int { max(1, (1 << 19) / max(1, rowCount * memberStride)) }
    var slabs: [Range<Int>] { stride(from: 0, to: rIn, by: slabSize).map { $0..<min($0 + slabSize, rIn) } }

    /// `P[range, …]` as a tensor `[range.count · R_rows, members…]`.
    func slab(_ range: Range<Int>) -> Tensor<Double> {
        let stride = memberStride, perIn = rowCount
        var out = [Double](repeating: 0, count: range.count * perIn * stride)
        for (l, offset) in offsets.enumerated() {
            let r = cols[l].rows
            guard r > 0 else { continue }
            let c = cols[l].columns(range)  // r × |range|
            let flat = Matrix(rows: perIn, cols: r, storage: rows[l].storage)
            let part = LA.mul(c, flat, ta: true, tb: true)  // |range| × R_rows
            for e in 0..<part.storage.count { out[e * stride + offset] = part.storage[e] }
        }
        return Tensor(shape: [range.count * perIn] + memberDims, storage: out)
    }

    /// The slab with the given member factors applied (`×_j U_jᵀ` for the first modes).
    func reducedSlab(_ range: Range<Int>, applying factors: [Matrix<Double>]) -> Tensor<Double> {
        var t = slab(range)
        for (j, u) in factors.enumerated() { t = TensorOps.modeProduct(t, u.transposed(), mode: 1 + j) }
        return t
    }

    /// `R` (`m_n × m_n`) of the QR of the transposed mode-n unfolding of `P ×_{j<n} U_jᵀ`: its
    /// transpose has the unfolding's left singular vectors and singular values.
    func memberTriangle(mode n: Int, applying factors: [Matrix<Double>]) -> Matrix<Double> {
        // The body does not throw, so neither does the map.
        let parts = (try? Parallel.map(count: slabs.count) { i -> Matrix<Double> in
            let tall = TensorOps.unfold(reducedSlab(slabs[i], applying: factors), mode: 1 + n).transposed()
            return tall.rows > tall.cols ? LA.qr(tall).r : tall
        }) ?? []
        return Self.stackedTriangle(parts, cols: memberDims[n])
    }

    /// R of the QR of the blocks stacked vertically.
    static func stackedTriangle(_ blocks: [Matrix<Double>], cols: Int) -> Matrix<Double> {
        let total = blocks.reduce(0) { $0 + $1.rows }
        var m = Matrix<Double>(rows: total, cols: cols)
        var r0 = 0
        for b in blocks {
            for i in 0..<b.rows { for j in 0..<cols { m[r0 + i, j] = b[i, j] } }
            r0 += b.rows
        }
        return total > cols ? LA.qr(m).r : m
    }

}

/// The truncated core `P ×_members U_jᵀ` (shape `[R_in, R_rows…, R_members…]`), produced slab by
/// slab straight into the stored dtype, or densely in f64 for HOOI.
struct TruncatedCore {
    let projected: ProjectedCore
    let memberFactors: [Matrix<Double>]

    var shape: [Int] { [projected.rIn] + projected.rowShape + memberFactors.map(\.cols) }

    /// Calls `body(range, values)` for each slab of `in` indices with the core's values there.
    private func slabs(_ body: (Range<Int>, [Double]) -> Void) {
        let slabs = projected.slabs
        // Two slabs at a time per core keep memory at a few slabs; the body runs in order.
        let batch = max(1, 2 * Parallel.workerCount)
        for start in stride(from: 0, to: slabs.count, by: batch) {
            let ranges = Array(slabs[start..<min(start + batch, slabs.count)])
            let pieces = (try? Parallel.map(count: ranges.count) { i in
                projected.reducedSlab(ranges[i], applying: memberFactors).storage
            }) ?? []  // the body does not throw
            for (range, piece) in zip(ranges, pieces) { body(range, piece) }
        }
    }

    /// The core stored as `dtype` (each value rounded once), without an f64 copy of the whole.
    func stored(as dtype: DType) -> StoredTensor {
        let perIn = shape.dropFirst().reduce(1, *)
        let width = dtype.byteWidth
        var bytes = [UInt8](repeating: 0, count: projected.rIn * perIn * width)
        slabs { range, values in
            bytes.withUnsafeMutableBytes { out in
                values.withUnsafeBufferPointer { v in
                    ElementConversion.encode(v, as: dtype, into: UnsafeMutableRawBufferPointer(
                        rebasing: out[(range.lowerBound * perIn * width)..<(range.upperBound * perIn * width)]))
                }
            }
        }
        return StoredTensor(dtype: dtype, shape: shape, bytes: bytes)
    }

    /// The core in f64.
    func dense() -> Tensor<Double> {
        let perIn = shape.dropFirst().reduce(1, *)
        var out = [Double](repeating: 0, count: projected.rIn * perIn)
        slabs { range, values in
            for (i, v) in values.enumerated() { out[range.lowerBound * perIn + i] = v }
        }
        return Tensor(shape: shape, storage: out)
    }
}
