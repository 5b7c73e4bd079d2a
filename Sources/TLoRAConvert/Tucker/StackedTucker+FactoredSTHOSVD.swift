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
    /// truncation then projects the members' factors, as ST-HOSVD projects the core; the member
    /// modes come last and are truncated on the (by then small) dense core.
    ///
    /// - Returns: the Tucker form in the bases' coordinates and the discarded tail of each mode.
    /// - Complexity: one SVD of `k × Σ r_l` per column/row mode instead of one of `k × (size/k)`.
    func factoredSTHOSVD(tolerance: Double, ranks: [Int]?, maxRank: Int) -> (SmallTucker, [Double]) {
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

        // The projected core [R_in, R_rows…, members…], then the member modes on it densely.
        let memberDims = Array(dimensions.dropFirst(1 + rowCount))
        let memberStride = memberDims.reduce(1, *)
        let shape = [uIn.cols] + factors.dropFirst().map(\.cols) + memberDims
        var core = [Double](repeating: 0, count: shape.reduce(1, *))
        for (l, (r, c)) in zip(rows, cols).enumerated() {
            let rank = c.rows
            let flat = Matrix(rows: r.count / rank, cols: rank, storage: r.storage)
            let slice = LA.mul(c, flat, ta: true, tb: true)  // R_in × R_rows
            let offset = members[l].offset
            for e in 0..<slice.storage.count { core[e * memberStride + offset] = slice.storage[e] }
        }
        let (dense, memberTails) = SmallTucker.sthosvd(Tensor(shape: shape, storage: core), tolerance: tolerance, ranks: ranks,
                                                       maxRank: maxRank, modes: (1 + rowCount)..<shape.count)
        for n in (1 + rowCount)..<shape.count { factors.append(dense.factors[n]) }
        return (SmallTucker(factors: factors, core: dense.core), tails + memberTails)
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
