import TLoRAConvert
import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// Merges an update into a base tensor block by block, so each block of rows is decoded, updated
/// (`W += s · ΔW` from the update's factors), renormalized for DoRA and rounded to the output dtype
/// while it sits in cache: memory traffic is one read of the base and one write of the result.
enum FusedUpdate {
    /// What produces a block of `ΔW`'s rows, prepared once per module in f32.
    enum Rows {
        /// `B · A` through GEMM (`b` `out × r`, `a` `r × in`): LoRA as stored, and every form whose exact
        /// factors have a small rank (Tucker-2, Hadamard, AdaLoRA, VeRA).
        case lowRank(a: [Float], b: [Float], rank: Int)
        /// `W1 ⊗ W2` written row by row from the two dense halves (`w1` `a × c`, `w2` `b × e`): one
        /// multiply-add per element, whatever the Kronecker rank.
        case kronecker(w1: [Float], w1Cols: Int, w2: [Float], w2Rows: Int, w2Cols: Int)
    }

    /// The row source for `m`, or nil when the block-wise merge does not apply: the weight is stored
    /// transposed (rows of ΔW are columns of W) for anything but LoRA, DoRA needs whole input columns,
    /// or the form has no cheap rows (tensor trains, Tucker slices, dense, IA³).
    static func rows(for m: AdapterModule, in adapter: Adapter) throws -> Rows? {
        guard m.doraMagnitude == nil || (m.layout == .outIn && m.doraAxis == .out) else { return nil }
        switch m.update {
        case .lowRank(let a, let b):
            return .lowRank(a: a.floats(), b: b.floats(), rank: a.shape[0])
        case .kronecker(let k) where m.layout == .outIn:
            let w1 = StructuredFactors.dense(k.w1), w2 = StructuredFactors.dense(k.w2)
            return .kronecker(w1: w1.storage.map { Float($0) }, w1Cols: w1.cols, w2: w2.storage.map { Float($0) }, w2Rows: w2.rows, w2Cols: w2.cols)
        case .convTucker, .hadamard, .diagonalLowRank, .vera:
            guard m.layout == .outIn, let f = try LowRankForm.of(m, in: adapter) else { return nil }
            return .lowRank(a: f.a.storage.map { Float($0) }, b: f.b.storage.map { Float($0) }, rank: f.rank)
        default:
            return nil
        }
    }

    /// - Parameters:
    ///   - source: the base tensor's bytes (or its replacement's) in `sourceType`, shape `rows × cols`
    ///     in the base's orientation.
    ///   - output: receives `rows × cols` elements of `outputType`.
    static func apply(_ m: AdapterModule, rows source: Rows, scale extra: Double, source base: UnsafeRawBufferPointer, sourceType: DType,
                      output: UnsafeMutableRawBufferPointer, outputType: DType) {
        let magnitude = m.doraMagnitude?.doubles()
        let epsilon = m.doraEpsilon
        let (rows, cols) = m.layout == .outIn ? (m.outFeatures, m.inFeatures) : (m.inFeatures, m.outFeatures)
        let alpha = Float(m.scale * extra)
        // Rows per block: ~128 KiB of f32 scratch, a multiple of the 6-row GEMM tile.
        let blockRows = max(6, (32 << 10) / max(cols, 1) / 6 * 6)
        let blocks = (rows + blockRows - 1) / blockRows
        Parallel.team(min(Parallel.workerCount, blocks)) { w, workers in
            let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: blockRows * cols)
            defer { scratch.deallocate() }
            var block = w
            while block < blocks {
                let r0 = block * blockRows, r1 = min(rows, r0 + blockRows), n = r1 - r0
                let s = UnsafeMutableBufferPointer(rebasing: scratch[0..<(n * cols)])
                ElementConversion.decode(UnsafeRawBufferPointer(rebasing: base[(r0 * cols * sourceType.byteWidth)..<(r1 * cols * sourceType.byteWidth)]),
                                         dtype: sourceType, into: s)
                switch source {
                case .lowRank(let a, let b, let r):
                    addLowRank(a: a, b: b, rank: r, layout: m.layout, rows: rows, cols: cols, r0: r0, n: n, alpha: alpha, into: s)
                case .kronecker(let w1, let c, let w2, let bRows, let e):
                    addKronecker(w1: w1, w1Cols: c, w2: w2, w2Rows: bRows, w2Cols: e, r0: r0, n: n, alpha: alpha, into: s)
                }
                if let magnitude {
                    for i in 0..<n {
                        var norm = 0.0
                        for j in 0..<cols { let v = Double(s[i * cols + j]); norm += v * v }
                        let f = Float(magnitude[r0 + i] / (norm.squareRoot() + epsilon))
                        for j in 0..<cols { s[i * cols + j] *= f }
                    }
                }
                ElementConversion.encode(UnsafeBufferPointer(s), as: outputType,
                                         into: UnsafeMutableRawBufferPointer(rebasing: output[(r0 * cols * outputType.byteWidth)..<(r1 * cols * outputType.byteWidth)]))
                block += workers
            }
        }
    }

    /// `s[0..<n rows] += alpha · (B · A)[r0..<r0+n]` (or the transposed rows for `in_out`).
    static func addLowRank(a: [Float], b: [Float], rank r: Int, layout: WeightLayout, rows: Int, cols: Int, r0: Int, n: Int, alpha: Float,
                           into s: UnsafeMutableBufferPointer<Float>) {
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                // Safe: shapes were validated, so every pointer is non-nil and in bounds.
                if layout == .outIn {
                    GEMM.multiply(m: n, n: cols, k: r, alpha: alpha, a: bp.baseAddress! + r0 * r, lda: r,
                                  b: ap.baseAddress!, ldb: cols, beta: 1, c: s.baseAddress!, ldc: cols)
                } else {
                    GEMM.multiply(transposeA: true, transposeB: true, m: n, n: cols, k: r, alpha: alpha,
                                  a: ap.baseAddress! + r0, lda: rows, b: bp.baseAddress!, ldb: r, beta: 1, c: s.baseAddress!, ldc: cols)
                }
            }
        }
    }

    /// Rows `r0..<r0+n` of `alpha · (W1 ⊗ W2)` added to `s`: row `i·b + p` is
    /// `[alpha·W1[i, 0]·W2[p, :], …, alpha·W1[i, c−1]·W2[p, :]]`.
    static func addKronecker(w1: [Float], w1Cols c: Int, w2: [Float], w2Rows b: Int, w2Cols e: Int, r0: Int, n: Int, alpha: Float,
                             into s: UnsafeMutableBufferPointer<Float>) {
        let cols = c * e
        w1.withUnsafeBufferPointer { x in
            w2.withUnsafeBufferPointer { y in
                for row in r0..<(r0 + n) {
                    let (i, p) = (row / b, row % b)
                    let out = s.baseAddress! + (row - r0) * cols  // safe: s holds n rows
                    let w2Row = y.baseAddress! + p * e  // safe: p < b
                    for j in 0..<c {
                        let f = alpha * x[i * c + j]
                        let o = out + j * e
                        for q in 0..<e { o[q] += f * w2Row[q] }
                    }
                }
            }
        }
    }
}
