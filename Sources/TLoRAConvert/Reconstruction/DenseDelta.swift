import TLoRAModel
import TLoRANumerics

/// `ΔW` as a dense `out × in` matrix, for any update form. The last resort: merges and conversions
/// work from factors when they can; this is for checking them and for forms without factors.
public enum DenseDelta {
    /// `scale · U` of `module` (canonical `out × in`), in f64.
    public static func of(_ module: AdapterModule, in adapter: Adapter) throws -> Matrix<Double> {
        var u = try unscaled(module, in: adapter)
        if module.scale != 1 { for i in u.storage.indices { u.storage[i] *= module.scale } }
        return u
    }

    /// `U` (without the module's scale).
    public static func unscaled(_ module: AdapterModule, in adapter: Adapter) throws -> Matrix<Double> {
        switch module.update {
        case .lowRank(let a, let b):
            return product(b.matrix(), a.matrix())
        case .dense(let d):
            return d.matrix()
        case .tensorTrain(let tt):
            return tensorTrain(tt)
        case .jointTrain(let j):
            return JointFactors.factors(j, outFeatures: module.outFeatures, inFeatures: module.inFeatures).dense
        case .tuckerSlice(let group, let index):
            guard let g = adapter.tuckerGroup(named: group) else { throw ConvertError(.missingPart, "module \(module.name): Tucker group \(group) is missing") }
            return tuckerSlice(g, index: index)
        case .kronecker(let k):
            return LowRankForm.kronecker(StructuredFactors.dense(k.w1), StructuredFactors.dense(k.w2))
        case .hadamard(let h):
            var x = StructuredFactors.dense(h.p1)
            let y = StructuredFactors.dense(h.p2)
            for i in x.storage.indices { x.storage[i] *= y.storage[i] }
            return x
        case .convTucker, .diagonalLowRank, .vera:
            // Safe: these forms always have factors.
            return try LowRankForm.of(module, in: adapter)!.dense
        case .featureScale:
            throw StructuredFactors.notAdditive(module)
        }
    }

    /// Contracts a tensor train into its `(∏m) × (∏n)` matrix (docs/FORMAT.md §2.3), rows and
    /// columns placed by the train's digit orders.
    public static func tensorTrain(_ tt: TensorTrain) -> Matrix<Double> {
        let forward = forwardTensorTrain(tt)
        guard !tt.hasDefaultOrder else { return forward }
        let rows = tt.rowOrder.permutation(modes: tt.rowModes), cols = tt.columnOrder.permutation(modes: tt.columnModes)
        var out = Matrix<Double>(rows: forward.rows, cols: forward.cols)
        for i in 0..<forward.rows {
            for j in 0..<forward.cols { out.storage[rows[i] * forward.cols + cols[j]] = forward.storage[i * forward.cols + j] }
        }
        return out
    }

    /// The contraction with both digit orders forward. Each core is one GEMM,
    /// `acc[(rows, cols), r] · G[r, (m, n, r')]`, and one permutation that interleaves the new mode
    /// indices with the old ones: [rows, cols, m, n, r'] → [rows, m, cols, n, r'].
    static func forwardTensorTrain(_ tt: TensorTrain) -> Matrix<Double> {
        var rows = 1, cols = 1, rank = 1
        var acc = Matrix<Double>(rows: 1, cols: 1, storage: [1])  // (rows · cols) × rank
        for core in tt.cores {
            let (r0, m, n, r1) = (core.shape[0], core.shape[1], core.shape[2], core.shape[3])
            precondition(r0 == rank)
            let g = Matrix(rows: r0, cols: m * n * r1, storage: core.doubles())
            let next = LA.mul(acc, g)  // [rows, cols, m, n, r1]
            let t = Tensor(shape: [rows, cols, m, n, r1], storage: next.storage).permuted([0, 2, 1, 3, 4])
            rows *= m
            cols *= n
            rank = r1
            acc = Matrix(rows: rows * cols, cols: rank, storage: t.storage)
        }
        precondition(rank == 1)
        return Matrix(rows: rows, cols: cols, storage: acc.storage)
    }

    /// The full tensor of a Tucker group (`core ×_1 U_1 ⋯ ×_N U_N`), row-major over its dimensions.
    public static func tuckerTensor(_ g: TuckerGroup) -> Tensor<Double> {
        var t = g.core.tensor()
        for (k, f) in g.factors.enumerated() { t = modeProduct(t, f.matrix(), mode: k) }
        return t
    }

    /// One member's `out × in` slice of a Tucker group.
    public static func tuckerSlice(_ g: TuckerGroup, index: [Int]) -> Matrix<Double> {
        // Fix member modes first (cheap: a row of the factor), then expand the rest.
        var t = g.core.tensor()
        var memberCursor = 0
        for (k, f) in g.factors.enumerated() {
            if g.modes[k].role == .member {
                let row = f.matrix().rows(index[memberCursor]..<(index[memberCursor] + 1))
                memberCursor += 1
                t = modeProduct(t, row, mode: k)
            } else {
                t = modeProduct(t, f.matrix(), mode: k)
            }
        }
        // Now member modes have size 1; order rows (row modes, in order) × columns (column modes).
        let rowModes = g.modes.indices.filter { g.modes[$0].role == .row }
        let colModes = g.modes.indices.filter { g.modes[$0].role == .column }
        let permuted = permute(t, axes: rowModes + colModes + g.modes.indices.filter { g.modes[$0].role == .member })
        let out = rowModes.reduce(1) { $0 * t.shape[$1] }, inn = colModes.reduce(1) { $0 * t.shape[$1] }
        return Matrix(rows: out, cols: inn, storage: permuted.storage)
    }

    static func product(_ a: Matrix<Double>, _ b: Matrix<Double>) -> Matrix<Double> { LA.mul(a, b) }
    static func modeProduct(_ t: Tensor<Double>, _ m: Matrix<Double>, mode: Int) -> Tensor<Double> { TensorOps.modeProduct(t, m, mode: mode) }
    static func permute(_ t: Tensor<Double>, axes: [Int]) -> Tensor<Double> { TensorOps.permute(t, axes: axes) }
}
