import TLoRAIO
import TLoRAModel
import TLoRANumerics

extension StackedTucker {
    /// What the stored (rounded) group misses of `T`: an upper bound per member slice, and per
    /// member the exact part of it.
    struct StoredError {
        /// Per member (in `members` order): the bound on ‖T_l − T̂'_l‖_F.
        var members: [Double]
        /// Per member: ‖T_l‖_F.
        var memberNorms: [Double]
        /// The bound on ‖T − T̂'‖_F over the whole group (empty grid positions included).
        var total: Double
    }

    /// Bounds the error of the group as stored, member by member, without the dense core.
    ///
    /// With `S_k` the small factors (orthonormal, `k × R`), `M_l = G' ×_members u'_l` the stored
    /// core contracted with member `l`'s rows of the stored member factors, and `Ŷ_l` the slice
    /// `M_l` rebuilt with the unrounded full factors `Q_k S_k`:
    ///
    ///     ‖T_l − T̂'_l‖ ≤ ‖T_l − Ŷ_l‖ + ‖Ŷ_l − T̂'_l‖.
    ///
    /// The first term is computed, as orthogonal pieces that nothing cancels in: with
    /// `Π = ⊗ S_k S_kᵀ`, `‖C_l − S·M_l‖² = ‖(I − Π) C_l‖² + ‖C_l ×_k S_kᵀ − M_l‖²`, where
    /// `(I − Π) = (I − P_in) ⊗ I + P_in ⊗ Σ_j P_{<j} ⊗ (I − P_j) ⊗ I` splits further into orthogonal
    /// pieces whose norms come from `r × r` Gram matrices of the member's factors, and the in-span
    /// difference is compared entry by entry, slab by slab. The second term is the storage rounding
    /// of the full factors, `δ_k = U'_k − Q_k S_k`: `‖⊗U'_k − ⊗Q_k S_k‖₂ ≤ ∏(1 + ‖δ_k‖₂) − 1`, so it
    /// is at most `‖M_l‖_F · rounding` with `rounding = ∏(1 + ‖δ_k‖₂) − 1` (`roundingNorm`). In f64
    /// storage `δ_k = 0`.
    ///
    /// - Complexity: per member `O(k·R·r)`; the stored core is read once, in slabs (one GEMM with the
    ///   member factors' Kronecker product); memory: a few slabs.
    func storedError(factors small: [Matrix<Double>], rounding: Double, stored: TuckerGroup) -> StoredError {
        let rowCount = rowModeCount
        // Per member: the part outside the kept subspace, and the projected factors.
        let sIn = small[0]
        let sRows = Array(small[1...rowCount])
        let parts = (try? Parallel.map(count: members.count) { l in
            Self.truncation(rows: members[l].rows, cols: members[l].cols, sIn: sIn, sRows: sRows)
        }) ?? []  // the body does not throw

        // The in-span difference and ‖M_l‖, slab by slab of the stored core's `in` index.
        let memberShape = Array(stored.core.shape.dropFirst(1 + rowCount))
        var kron = Matrix<Double>.identity(1)
        for k in (1 + rowCount)..<stored.factors.count { kron = LowRankForm.kronecker(kron, stored.factors[k].matrix()) }
        let positions = kron.rows  // member grid size
        let rIn = stored.core.shape[0]
        let rowFlat = stored.core.shape[1...rowCount].reduce(1, *)
        let perIn = rowFlat * memberShape.reduce(1, *)
        let slabSize = max(1, (1 << 19) / max(1, rowFlat * (positions + kron.cols)))
        let slabs = stride(from: 0, to: rIn, by: slabSize).map { $0..<min($0 + slabSize, rIn) }
        let width = stored.core.dtype.byteWidth
        let memberAt = Dictionary(uniqueKeysWithValues: members.enumerated().map { ($1.offset, $0) })
        let sums = (try? Parallel.map(count: slabs.count) { s -> [(d2: Double, m2: Double)] in
            let range = slabs[s]
            let values = stored.core.bytes.withUnsafeBytes { raw in
                ElementConversion.doubles(from: UnsafeRawBufferPointer(rebasing: raw[(range.lowerBound * perIn * width)..<(range.upperBound * perIn * width)]),
                                          dtype: stored.core.dtype)
            }
            let g = Matrix(rows: range.count * rowFlat, cols: kron.cols, storage: values)
            let m = LA.mul(g, kron, tb: true)  // (in, rows) × positions
            var out = [(d2: Double, m2: Double)](repeating: (0, 0), count: positions)
            for p in 0..<positions {
                var d2 = 0.0, m2 = 0.0
                if let l = memberAt[p], parts[l].cP.rows > 0 {
                    let proj = LA.mul(parts[l].cP.columns(range), parts[l].rowsP, ta: true, tb: true)  // |range| × R_rows
                    for e in 0..<proj.storage.count {
                        let v = m.storage[e * positions + p]
                        let d = proj.storage[e] - v
                        d2 += d * d
                        m2 += v * v
                    }
                } else {
                    for e in 0..<(range.count * rowFlat) { let v = m.storage[e * positions + p]; m2 += v * v; d2 += v * v }
                }
                out[p] = (d2, m2)
            }
            return out
        }) ?? []  // the body does not throw

        var memberErrors = [Double](repeating: 0, count: members.count)
        var total2 = 0.0
        for p in 0..<positions {
            let d2 = sums.reduce(0) { $0 + $1[p].d2 }, m2 = sums.reduce(0) { $0 + $1[p].m2 }
            let exact2 = d2 + (memberAt[p].map { parts[$0].outside2 } ?? 0)
            let bound = exact2.squareRoot() + rounding * m2.squareRoot()
            if let l = memberAt[p] { memberErrors[l] = bound }
            total2 += bound * bound
        }
        let norms = members.map { Self.productNorm2(rows: $0.rows, cols: $0.cols).squareRoot() }
        return StoredError(members: memberErrors, memberNorms: norms, total: total2.squareRoot())
    }

    /// A bound on `‖stored − exact‖₂` for a stored full factor: the square root of the largest
    /// eigenvalue of `δᵀδ`, plus a margin for that eigenvalue's own rounding; 0 when nothing was
    /// rounded (f64 storage).
    static func roundingNorm(stored: StoredTensor, exact: Matrix<Double>) -> Double {
        var delta = stored.matrix()
        var zero = true
        for i in delta.storage.indices {
            delta.storage[i] -= exact.storage[i]
            if delta.storage[i] != 0 { zero = false }
        }
        if zero { return 0 }
        let gram = LA.mul(delta, delta, ta: true)
        let largest = symmetricEigen(gram).values.max() ?? 0
        let margin = 4 * Double(gram.rows) * Double.ulpOfOne * frobeniusNorm(gram.storage)
        return (max(largest, 0) + margin).squareRoot()
    }

    /// One member's `‖(I − Π) C_l‖²` and its factors projected on the kept subspace: `cP = cols·S_in`
    /// (`r × R_in`) and `rowsP = rows ×_j S_jᵀ` flattened (`R_rows × r`).
    static func truncation(rows: Tensor<Double>, cols: Matrix<Double>, sIn: Matrix<Double>, sRows: [Matrix<Double>])
        -> (outside2: Double, cP: Matrix<Double>, rowsP: Matrix<Double>) {
        let r = cols.rows
        let cP = LA.mul(cols, sIn)
        var outside2 = 0.0
        if sIn.cols < sIn.rows {
            // (I − P_in) ⊗ I: the columns' residue against all of the rows.
            var residue = cols
            let back = LA.mul(cP, sIn, tb: true)
            for i in residue.storage.indices { residue.storage[i] -= back.storage[i] }
            outside2 += productNorm2(rows: rows, cols: residue)
        }
        // P_in ⊗ P_{<j} ⊗ (I − P_j) ⊗ I for each row mode j, on the rows already projected before j
        // (S_{<j} has orthonormal columns, so the norms are the same in the small coordinates).
        var x = rows
        var residueGram = Matrix<Double>(rows: r, cols: r)
        for (j, s) in sRows.enumerated() {
            let down = TensorOps.modeProduct(x, s.transposed(), mode: j)
            if s.cols < s.rows {
                let back = TensorOps.modeProduct(down, s, mode: j)
                var residue = x.storage
                for i in residue.indices { residue[i] -= back.storage[i] }
                let flat = Matrix(rows: residue.count / max(r, 1), cols: r, storage: residue)
                let g = LA.mul(flat, flat, ta: true)
                for i in g.storage.indices { residueGram.storage[i] += g.storage[i] }
            }
            x = down
        }
        if sRows.contains(where: { $0.cols < $0.rows }) {
            let gc = LA.mul(cP, cP, tb: true)
            var sum = 0.0
            for i in gc.storage.indices { sum += gc.storage[i] * residueGram.storage[i] }
            outside2 += max(sum, 0)
        }
        return (outside2, cP, Matrix(rows: x.count / max(r, 1), cols: r, storage: x.storage))
    }
}
