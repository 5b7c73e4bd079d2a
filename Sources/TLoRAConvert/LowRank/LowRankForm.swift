import TLoRAModel
import TLoRANumerics

/// `U = B · A` exactly, in f64, for the update forms that have such factors without forming `U`:
/// LoRA factors as they are; a tensor train whose row cores all precede its column cores (or
/// follow them) contracted on each side of the split bond; a Tucker slice as (row factors · core
/// slice) · (column factors)ᵀ. The scale is not included.
public struct LowRankForm: Sendable {
    /// `out × k`.
    public var b: Matrix<Double>
    /// `k × in`.
    public var a: Matrix<Double>

    public var rank: Int { a.rows }

    public init(b: Matrix<Double>, a: Matrix<Double>) {
        precondition(b.cols == a.rows, "LowRankForm: B is \(b.rows)×\(b.cols) but A is \(a.rows)×\(a.cols)")
        self.b = b
        self.a = a
    }

    /// The exact factors of `module`'s update, or nil when none exist short of the dense matrix
    /// (interleaved TT-matrix layouts, dense updates).
    public static func of(_ module: AdapterModule, in adapter: Adapter) throws -> LowRankForm? {
        switch module.update {
        case .lowRank(let a, let b):
            return LowRankForm(b: b.matrix(), a: a.matrix())
        case .dense:
            return nil
        case .tensorTrain(let tt):
            return separable(tt).map { $0.reordered(for: tt) }
        case .jointTrain(let j):
            return JointFactors.factors(j, outFeatures: module.outFeatures, inFeatures: module.inFeatures)
        case .tuckerSlice(let group, let index):
            guard let g = adapter.tuckerGroup(named: group) else { throw ConvertError(.missingPart, "module \(module.name): Tucker group \(group) is missing") }
            return tuckerSlice(g, index: index)
        case .convTucker(let t):
            return StructuredFactors.tucker(t)
        case .kronecker(let k):
            return StructuredFactors.kronecker(k)
        case .hadamard(let h):
            return StructuredFactors.hadamard(h)
        case .diagonalLowRank(let a, let b, let e):
            return StructuredFactors.diagonal(a: a, b: b, e: e)
        case .vera(let v):
            guard let pair = adapter.projectionPair(named: v.projections) else {
                throw ConvertError(.missingPart, "module \(module.name): projections \(v.projections) are missing")
            }
            return StructuredFactors.vera(v, pair: pair, outFeatures: module.outFeatures, inFeatures: module.inFeatures)
        case .featureScale:
            throw StructuredFactors.notAdditive(module)
        }
    }

    /// `U` as factors, or the dense matrix as `U · I` when no factors exist (exact, but costly).
    public static func orDense(_ module: AdapterModule, in adapter: Adapter) throws -> LowRankForm {
        if let f = try of(module, in: adapter) { return f }
        let dense = try DenseDelta.unscaled(module, in: adapter)
        return LowRankForm(b: dense, a: Matrix.identity(dense.cols))
    }

    /// The factors with `B`'s rows and `A`'s columns moved to where the train's digit orders put
    /// them (`separable` contracts in the forward order).
    func reordered(for tt: TensorTrain) -> LowRankForm {
        guard !tt.hasDefaultOrder else { return self }
        let rows = tt.rowOrder.permutation(modes: tt.rowModes), cols = tt.columnOrder.permutation(modes: tt.columnModes)
        var nb = Matrix<Double>(rows: b.rows, cols: b.cols), na = Matrix<Double>(rows: a.rows, cols: a.cols)
        for i in 0..<b.rows { for k in 0..<b.cols { nb[rows[i], k] = b[i, k] } }
        for k in 0..<a.rows { for j in 0..<a.cols { na[k, cols[j]] = a[k, j] } }
        return LowRankForm(b: nb, a: na)
    }

    /// For a train split into a row part and a column part at one bond.
    static func separable(_ tt: TensorTrain) -> LowRankForm? {
        let shapes = tt.cores.map(\.shape)
        let d = shapes.count
        // Row cores first: cores 0..<p have n = 1, cores p..<d have m = 1.
        for p in 0...d {
            let rowsFirst = shapes[..<p].allSatisfy { $0[2] == 1 } && shapes[p...].allSatisfy { $0[1] == 1 }
            let colsFirst = shapes[..<p].allSatisfy { $0[1] == 1 } && shapes[p...].allSatisfy { $0[2] == 1 }
            if rowsFirst {
                let left = contract(tt.cores[..<p].map { $0.tensor() }, modeIndex: 1)  // out × r_p
                let right = contract(tt.cores[p...].map { $0.tensor() }, modeIndex: 2)  // r_p × in (as left: r_p rows)
                return LowRankForm(b: left, a: right.transposedIfNeeded(rows: left.cols))
            }
            if colsFirst {
                // ΔW[i, j] = C[j, :] · R[:, i]: B = Rᵀ, A = Cᵀ.
                let c = contract(tt.cores[..<p].map { $0.tensor() }, modeIndex: 2)  // in × r_p
                let r = contract(tt.cores[p...].map { $0.tensor() }, modeIndex: 1)  // r_p × out
                let rr = r.transposedIfNeeded(rows: c.cols)
                return LowRankForm(b: rr.transposed(), a: c.transposed())
            }
        }
        return nil
    }

    /// Contracts consecutive 4-D cores `[r, m, n, r']` along their bonds, keeping mode `modeIndex`
    /// (1 = row mode, 2 = column mode; the other is 1). Returns `(∏ modes) × r_last` when the first
    /// core starts at rank 1, or `r_first × (∏ modes)` when the last core ends at rank 1.
    static func contract(_ cores: [Tensor<Double>], modeIndex: Int) -> Matrix<Double> {
        guard let first = cores.first else { return Matrix.identity(1) }
        if first.shape[0] == 1 {
            // Left part: accumulate (modes) × r.
            var acc = Matrix<Double>(rows: first.shape[modeIndex], cols: first.shape[3], storage: first.storage)
            for core in cores.dropFirst() {
                let (r0, mode, r1) = (core.shape[0], core.shape[modeIndex], core.shape[3])
                let next = LA.mul(acc, Matrix(rows: r0, cols: mode * r1, storage: core.storage))  // (modes) × (mode · r1)
                acc = Matrix(rows: acc.rows * mode, cols: r1, storage: next.storage)
            }
            return acc
        }
        // Right part: accumulate r × (modes), from the last core backwards.
        let last = cores[cores.count - 1]
        var acc = Matrix<Double>(rows: last.shape[0], cols: last.shape[modeIndex], storage: last.storage)
        for core in cores.dropLast().reversed() {
            let (r0, mode, r1) = (core.shape[0], core.shape[modeIndex], core.shape[3])
            let next = LA.mul(Matrix(rows: r0 * mode, cols: r1, storage: core.storage), acc)  // (r0 · mode) × (modes)
            acc = Matrix(rows: r0, cols: mode * acc.cols, storage: next.storage)
        }
        return acc
    }

    /// A Tucker slice: rows from the row-mode factors, columns from the column-mode factors.
    static func tuckerSlice(_ g: TuckerGroup, index: [Int]) -> LowRankForm {
        var t = g.core.tensor()
        var member = 0
        // Fix member modes and expand row modes; keep column modes in the rank space.
        for (k, f) in g.factors.enumerated() {
            switch g.modes[k].role {
            case .member:
                t = DenseDelta.modeProduct(t, f.matrix().rows(index[member]..<(index[member] + 1)), mode: k)
                member += 1
            case .row:
                t = DenseDelta.modeProduct(t, f.matrix(), mode: k)
            case .column:
                break
            }
        }
        let rowModes = g.modes.indices.filter { g.modes[$0].role == .row }
        let colModes = g.modes.indices.filter { g.modes[$0].role == .column }
        let memberModes = g.modes.indices.filter { g.modes[$0].role == .member }
        let p = DenseDelta.permute(t, axes: rowModes + colModes + memberModes)
        let out = rowModes.reduce(1) { $0 * t.shape[$1] }
        let k = colModes.reduce(1) { $0 * t.shape[$1] }
        let b = Matrix(rows: out, cols: k, storage: p.storage)
        // A = (⊗ column factors)ᵀ, columns combined mixed-radix with the last mode fastest.
        var a = Matrix<Double>.identity(1)
        for m in colModes { a = kronecker(a, g.factors[m].matrix().transposed()) }
        return LowRankForm(b: b, a: a)
    }

    /// `x ⊗ y` (Kronecker product), row-major.
    static func kronecker(_ x: Matrix<Double>, _ y: Matrix<Double>) -> Matrix<Double> {
        var out = Matrix<Double>(rows: x.rows * y.rows, cols: x.cols * y.cols)
        for i in 0..<x.rows {
            for j in 0..<x.cols {
                let v = x[i, j]
                for p in 0..<y.rows {
                    for q in 0..<y.cols { out[i * y.rows + p, j * y.cols + q] = v * y[p, q] }
                }
            }
        }
        return out
    }

    /// The dense `B · A`.
    public var dense: Matrix<Double> { LA.mul(b, a) }
}

extension Matrix where Scalar == Double {
    /// `self` when it already has `rows` rows, else its transpose (contractions return either).
    func transposedIfNeeded(rows wanted: Int) -> Matrix<Double> {
        self.rows == wanted ? self : transposed()
    }
}
