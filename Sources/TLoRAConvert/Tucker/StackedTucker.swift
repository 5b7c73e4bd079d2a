import TLoRAIO
import TLoRANumerics

/// A group's stacked tensor `T`, held exactly as a small core in orthonormal bases:
/// `T = C ×_k Q_k` over the row and column modes (member modes keep the identity).
///
/// Built from the members' factors, never from `T`: the column space of a row mode's unfolding of
/// `T` lies in that of the same unfolding of the stacked `B_l` tensors, so `Q_k` = orth(those
/// unfoldings) (QR of `[B_1 … B_L]` for a single `out` mode); likewise `Q_in` = orth([A_1ᵀ … A_Lᵀ]).
/// Then `C_l = (B_l ×_rows Q_rowsᵀ) · (s_l A_l Q_in)`, a tensor of size ∏ k_rows × k_in per member,
/// kept in that factored form: the dense `C` (∏ k × L, e.g. 512 × 512 × 32 doubles for 32 layers of
/// r16 updates) is built only for HOOI refinement (`denseCore()`).
struct StackedTucker {
    /// Dimensions of `T`, in mode order.
    var dimensions: [Int]
    /// Role of each mode.
    var roles: [TuckerModeRole]
    /// Orthonormal bases (dimension × k) for row and column modes; nil for member modes.
    var bases: [Matrix<Double>?]
    /// Each member's slice of the core in factored form, `C_l = Σ_r rows[…, r] · cols[r, in]`:
    /// `rows` = `B_l ×_rows Q_rowsᵀ` as `[k_rows…, r]`, `cols` = `s_l A_l Q_in` (`r × k_in`);
    /// `offset` is the member's position in the member modes (mixed radix, last fastest).
    var members: [(rows: Tensor<Double>, cols: Matrix<Double>, offset: Int)] = []
    /// ‖T‖_F, from the members' factors (the slices are orthogonal along the member modes).
    var norm: Double = 0
    /// Number of row modes (they follow the one column mode; member modes come last).
    var rowModeCount: Int { roles.filter { $0 == .row }.count }
    /// Sizes of the member modes.
    var memberDims: [Int] { Array(dimensions.dropFirst(1 + rowModeCount)) }
    /// The core's shape `[k_in, k_rows…, members…]`.
    var coreShape: [Int] { bases.enumerated().map { $1?.cols ?? dimensions[$0] } }

    enum TuckerModeRole { case row, column, member }

    /// Largest small core handled (doubles); beyond it the group needs `--ranks` or smaller groups.
    static let maxCoreElements = 1 << 27

    /// - Parameters:
    ///   - rowDims: the output index split into row modes (e.g. `[out]` or `[out/H, H]`).
    ///   - members: each member's factors, scale and coordinates along the member modes.
    ///   - memberDims: sizes of the member modes.
    ///   - modeOrder: the group's mode order as roles: TensLoRA puts `in` first, then the row modes,
    ///     then member modes.
    init(rowDims: [Int], inFeatures: Int, members: [(LowRankForm, Double, [Int])], memberDims: [Int]) throws {
        // Mode order (TensLoRA): column `in`, row modes, member modes.
        dimensions = [inFeatures] + rowDims + memberDims
        roles = [.column] + rowDims.map { _ in .row } + memberDims.map { _ in .member }
        let rowCount = rowDims.count
        // Column basis from [A_1ᵀ … A_Lᵀ] = Q_in R_in: then A_l Q_in = (R_in's block l)ᵀ, no product.
        let (qIn, rIn) = Self.basis(columns: members.map { $0.0.a.transposed() }, dimension: inFeatures)
        // Row bases: mode-j unfolding of each B_l viewed as [rowDims…, r_l]. With one row mode the
        // blocks are the B_l themselves and Q_outᵀ B_l is R_out's block l.
        var qRows: [Matrix<Double>] = []
        var rOut: Matrix<Double>? = nil
        for j in 0..<rowCount {
            let blocks = members.map { m -> Matrix<Double> in
                let t = Tensor(shape: rowDims + [m.0.rank], storage: m.0.b.storage)
                return TensorOps.unfold(t, mode: j)
            }
            let (q, r) = Self.basis(columns: blocks, dimension: rowDims[j])
            qRows.append(q)
            if rowCount == 1 { rOut = r }
        }
        bases = [qIn] + qRows.map { Optional($0) } + memberDims.map { _ in nil }
        let coreShape = [qIn.cols] + qRows.map(\.cols) + memberDims
        guard let count = CheckedSize.product(coreShape), count <= Self.maxCoreElements else {
            throw ConvertError(.tooLarge, "the stacked tensor's exact core would be \(coreShape.map(String.init).joined(separator: "×")); too large — use smaller groups or --ranks")
        }
        let qRowsT = rOut == nil ? qRows.map { $0.transposed() } : []
        var norm2 = 0.0
        var first = 0  // the member's first column in the stacked blocks
        for (f, s, index) in members {
            let block = first..<(first + f.rank)
            first += f.rank
            // B_l ×_rows Q_rowsᵀ: [k_rows…, r]; A_l Q_in scaled: r × k_in.
            var bt: Tensor<Double>
            if let rOut {
                bt = Tensor(shape: [rOut.rows, f.rank], storage: rOut.columns(block).storage)
            } else {
                bt = Tensor(shape: rowDims + [f.rank], storage: f.b.storage)
                for j in 0..<rowCount { bt = TensorOps.modeProduct(bt, qRowsT[j], mode: j) }
            }
            var aq = rIn.columns(block).transposed()  // r × k_in
            for i in aq.storage.indices { aq.storage[i] *= s }
            var memberOffset = 0
            for (d, i) in zip(memberDims, index) { memberOffset = memberOffset * d + i }
            norm2 += Self.productNorm2(rows: bt, cols: aq)
            self.members.append((bt, aq, memberOffset))
        }
        norm = norm2.squareRoot()
    }

    /// ‖Σ_r rows[…, r] ⊗ cols[r, :]‖² = ⟨rowsᵀrows, cols colsᵀ⟩ (two r × r Grams; both positive
    /// semidefinite, so nothing cancels beyond rounding).
    static func productNorm2(rows: Tensor<Double>, cols: Matrix<Double>) -> Double {
        let r = cols.rows
        guard r > 0, rows.count > 0 else { return 0 }
        let flat = Matrix(rows: rows.count / r, cols: r, storage: rows.storage)
        let gr = LA.mul(flat, flat, ta: true), gc = LA.mul(cols, cols, tb: true)
        var sum = 0.0
        for i in gr.storage.indices { sum += gr.storage[i] * gc.storage[i] }
        return max(sum, 0)
    }

    /// The dense core `C` (`coreShape`, member index fastest), for HOOI refinement.
    func denseCore() -> Tensor<Double> {
        let shape = coreShape
        let memberStride = memberDims.reduce(1, *)
        var core = [Double](repeating: 0, count: shape.reduce(1, *))
        for (rows, cols, offset) in members {
            let rank = cols.rows
            let flat = Matrix(rows: rows.count / max(rank, 1), cols: rank, storage: rows.storage)
            let slice = LA.mul(cols, flat, ta: true, tb: true)  // k_in × (rows…)
            for e in 0..<slice.storage.count { core[e * memberStride + offset] = slice.storage[e] }
        }
        return Tensor(shape: shape, storage: core)
    }

    /// An orthonormal basis `q` of the span of the blocks' columns and the blocks in it,
    /// `[b_1 b_2 …] = q · r`; or the identity and the blocks themselves when they span the whole
    /// space anyway (no compression to gain).
    static func basis(columns blocks: [Matrix<Double>], dimension: Int) -> (q: Matrix<Double>, r: Matrix<Double>) {
        let total = blocks.reduce(0) { $0 + $1.cols }
        var m = Matrix<Double>(rows: dimension, cols: total)
        var c = 0
        for b in blocks {
            for i in 0..<dimension { for j in 0..<b.cols { m[i, c + j] = b[i, j] } }
            c += b.cols
        }
        if total >= dimension { return (Matrix.identity(dimension), m) }
        return LA.qr(m)
    }
}

/// Sequentially truncated HOSVD (Vannieuwenhoven et al. 2012) and HOOI refinement on a small core.
struct SmallTucker {
    /// Factor per mode (k_n × R_n, orthonormal columns).
    var factors: [Matrix<Double>]
    /// `[R_1, …, R_N]`.
    var core: Tensor<Double>

    /// ST-HOSVD: mode by mode, keep the fewest left singular vectors of the current core's unfolding
    /// whose discarded tail is at most `tolerance` (or exactly `ranks[n]`). With `tolerance` =
    /// E·‖T‖/√N the result satisfies ‖T − T̂‖_F ≤ E‖T‖_F, since the N truncation errors are
    /// orthogonal and each is at most the tolerance.
    /// Modes outside `modes` keep the identity factor (they were truncated elsewhere); only the
    /// truncated modes' tails are returned.
    static func sthosvd(_ t: Tensor<Double>, tolerance: Double, ranks: [Int]?, maxRank: Int, modes: Range<Int>? = nil) -> (SmallTucker, [Double]) {
        var core = t
        var factors: [Matrix<Double>] = []
        var tails: [Double] = []
        let truncated = modes ?? 0..<t.rank
        for n in 0..<t.rank {
            guard truncated.contains(n) else {
                factors.append(Matrix.identity(t.shape[n]))
                continue
            }
            let (un, tail) = modeFactor(TensorOps.unfold(core, mode: n), mode: n, tolerance: tolerance, ranks: ranks, maxRank: maxRank)
            factors.append(un)
            tails.append(tail)
            core = TensorOps.modeProduct(core, un.transposed(), mode: n)
        }
        return (SmallTucker(factors: factors, core: core), tails)
    }

    /// The kept left singular vectors of a mode's unfolding (or of any matrix with the same left
    /// singular vectors and values): exactly `ranks[n]` of them, or the fewest whose discarded tail
    /// is at most `tolerance`; at least one.
    static func modeFactor(_ unfolding: Matrix<Double>, mode n: Int, tolerance: Double, ranks: [Int]?, maxRank: Int) -> (Matrix<Double>, tail: Double) {
        let (u, s, _) = LA.leftSVD(unfolding)
        let keep: Int, tail: Double
        if let ranks {
            keep = min(ranks[n], s.count)
            tail = s[keep...].reduce(0) { $0 + $1 * $1 }.squareRoot()
        } else {
            (keep, tail) = Truncation.rank(singularValues: s, tolerance: tolerance, maxRank: maxRank)
        }
        return (u.columns(0..<max(keep, 1)), tail)
    }

    /// `core ×_n factors[n]`.
    func expanded() -> Tensor<Double> {
        var t = core
        for (n, f) in factors.enumerated() { t = TensorOps.modeProduct(t, f, mode: n) }
        return t
    }

    /// ‖t − this‖_F, computed directly (no cancellation).
    func distance(to t: Tensor<Double>) -> Double {
        TensorOps.distance(t, expanded())
    }

    /// One HOOI sweep at fixed ranks: each factor becomes the leading left singular vectors of `t`
    /// projected on all the other factors. Never increases the error in exact arithmetic.
    func hooiSweep(_ t: Tensor<Double>) -> SmallTucker {
        var factors = self.factors
        for n in 0..<t.rank {
            var y = t
            for m in 0..<t.rank where m != n { y = TensorOps.modeProduct(y, factors[m].transposed(), mode: m) }
            let (u, _, _) = LA.leftSVD(TensorOps.unfold(y, mode: n))
            factors[n] = u.columns(0..<factors[n].cols)
        }
        var core = t
        for (n, f) in factors.enumerated() { core = TensorOps.modeProduct(core, f.transposed(), mode: n) }
        return SmallTucker(factors: factors, core: core)
    }
}
