import TLoRANumerics

/// One side (`out` or `in`) of a module's bank: an orthonormal basis that spans every member's
/// column space on that side, ordered by the singular values of the members' normalized updates
/// stacked side by side, and each member's energy beyond every prefix of it.
///
/// The members enter as blocks `K_j` (`dimension × r_j`) with `K_j K_jᵀ = X_j X_jᵀ / ‖X_j‖²` for the
/// out side (`K_j = B_j R_jᵀ / ‖X_j‖` with `A_jᵀ = Q_j R_j`; the in side is the same on `X_jᵀ`), so
/// they have the left singular vectors and energy of the member's normalized update without it
/// ever being formed.
///
/// Because the basis spans each `K_j` completely, `‖K_j‖² = Σ_l ‖u_lᵀ K_j‖²` and the member's
/// energy outside the first `k` columns is the *sum of the remaining terms*, `tails[j][k]` — a sum
/// of non-negative numbers, never a difference, so it is accurate however small it is.
struct ModeBasis {
    /// `dimension × p`, orthonormal columns.
    var basis: Matrix<Double>
    /// `tails[j][k] = Σ_{l ≥ k} ‖basis[:, l]ᵀ K_j‖²` for `k = 0 … p` (`tails[j][p] = 0`).
    var tails: [[Double]]
    /// Seconds of the steps: "svd" (thin SVD route) or "gram" and "eigen", then "energies".
    var timings: [StepTiming] = []

    var count: Int { basis.cols }

    /// Columns of stacked blocks processed at once: large enough for fast GEMMs, small enough that
    /// a 4096-row chunk stays near 64 MiB.
    static let chunkColumns = 2048

    /// - Parameters:
    ///   - dimension: rows of every block.
    ///   - widths: `r_j`, the number of columns of each member's block.
    ///   - leading: columns the basis must start with (orthonormal; the bases of an existing bank).
    ///     The rest of the basis then spans what they miss of the members.
    ///   - block: member `j`'s `K_j` (`dimension × widths[j]`).
    /// - Complexity: with `n = Σ r_j`: for `n ≤ dimension`, one thin SVD of `dimension × n`; above,
    ///   the Gram matrix (`2·dimension²·n` flops, streamed over chunks of members) and one symmetric
    ///   eigendecomposition of `dimension × dimension`. Then `2·dimension·p·n` for the energies.
    init(dimension: Int, widths: [Int], leading: Matrix<Double>? = nil, block: (Int) -> Matrix<Double>) {
        let chunks = Self.chunks(widths)
        func stacked(_ chunk: Range<Int>, minus lead: Matrix<Double>?) -> Matrix<Double> {
            var m = Self.concatenatingColumns(chunk.map(block), rows: dimension)
            if let lead { m = Self.removingSpan(of: lead, from: m) }
            return m
        }
        let total = widths.reduce(0, +)
        var clock = StepClock()
        func mark(_ step: String) { clock.mark(step) }
        var directions: Matrix<Double>
        var values: [Double]
        if total <= dimension {
            let (u, s, _) = LA.leftSVD(stacked(0..<widths.count, minus: leading))
            directions = u
            values = s
            mark("svd")
        } else {
            // Gram matrix of the stacked blocks, accumulated chunk by chunk: the members are never
            // all in memory at once.
            var gram = Matrix<Double>(rows: dimension, cols: dimension)
            for chunk in chunks {
                let k = stacked(chunk, minus: leading)
                gram.storage.withUnsafeMutableBufferPointer { g in
                    k.storage.withUnsafeBufferPointer { kb in
                        // Safe: both buffers are non-empty (dimension ≥ 1, the chunk has ≥ 1 column).
                        GEMM.multiply(transposeB: true, m: dimension, n: dimension, k: k.cols, a: kb.baseAddress!, lda: k.cols,
                                      b: kb.baseAddress!, ldb: k.cols, beta: 1, c: g.baseAddress!, ldc: dimension)
                    }
                }
            }
            mark("gram")
            let eig = symmetricEigen(gram)
            let order = Array((0..<dimension).reversed())
            directions = Matrix(rows: dimension, cols: dimension)
            for (dst, src) in order.enumerated() { for i in 0..<dimension { directions[i, dst] = eig.vectors[i, src] } }
            values = order.map { max(eig.values[$0], 0).squareRoot() }
            mark("eigen")
        }
        if let leading {
            // Only the directions the residual really has are new: the others are arbitrary and need
            // not be orthogonal to `leading`. Re-orthogonalize the kept ones against it once more.
            let top = values.first ?? 0
            let keep = values.prefix { $0 > 1e-13 * top && top > 0 }.count
            var fresh = Self.removingSpan(of: leading, from: directions.columns(0..<keep))
            fresh = keep > 0 ? LA.qr(fresh).q : fresh
            basis = Self.concatenatingColumns([leading, fresh], rows: dimension)
        } else {
            basis = directions
        }
        // Energies: ‖u_lᵀ K_j‖² for every column l and member j, then suffix sums.
        let p = basis.cols
        var tails = [[Double]](repeating: [], count: widths.count)
        for chunk in chunks {
            let k = stacked(chunk, minus: nil)
            let projected = LA.mul(basis, k, ta: true)  // p × (chunk's columns)
            let width = projected.cols
            var column = 0
            for j in chunk {
                var t = [Double](repeating: 0, count: p + 1)
                projected.storage.withUnsafeBufferPointer { pr in
                    for l in 0..<p {
                        var e = 0.0
                        for c in column..<(column + widths[j]) { e += pr[l * width + c] * pr[l * width + c] }
                        t[l] = e
                    }
                }
                for l in stride(from: p - 1, through: 0, by: -1) { t[l] += t[l + 1] }
                tails[j] = t
                column += widths[j]
            }
        }
        self.tails = tails
        mark("energies")
        timings = clock.steps
    }

    /// Consecutive members whose widths add up to about `chunkColumns` (at least one member each).
    static func chunks(_ widths: [Int]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var start = 0, width = 0
        for (j, w) in widths.enumerated() {
            if width > 0, width + w > chunkColumns {
                out.append(start..<j)
                start = j
                width = 0
            }
            width += w
        }
        if start < widths.count { out.append(start..<widths.count) }
        return out
    }

    /// `[b_1 b_2 …]` (each `rows × c_i`), row by row through buffer pointers: the blocks of a
    /// thousand members are copied several times per module.
    static func concatenatingColumns(_ blocks: [Matrix<Double>], rows: Int) -> Matrix<Double> {
        let total = blocks.reduce(0) { $0 + $1.cols }
        var m = Matrix<Double>(rows: rows, cols: total)
        m.storage.withUnsafeMutableBufferPointer { dst in
            var c0 = 0
            for b in blocks {
                precondition(b.rows == rows, "block has \(b.rows) rows, expected \(rows)")
                b.storage.withUnsafeBufferPointer { src in
                    for i in 0..<rows {
                        for j in 0..<b.cols { dst[i * total + c0 + j] = src[i * b.cols + j] }
                    }
                }
                c0 += b.cols
            }
        }
        return m
    }

    /// `m − Q(Qᵀm)`, twice (classical Gram–Schmidt needs the second pass to be orthogonal to rounding).
    static func removingSpan(of q: Matrix<Double>, from m: Matrix<Double>) -> Matrix<Double> {
        var r = m
        for _ in 0..<2 {
            let p = LA.mul(q, LA.mul(q, r, ta: true))
            for i in r.storage.indices { r.storage[i] -= p.storage[i] }
        }
        return r
    }
}

/// The choice of a module's bank ranks under a per-member bound.
enum BankRanks {
    /// The `(k_out, k_in)` of fewest parameters `out·k_out + in·k_in + M·k_out·k_in` such that every
    /// member `j` has `outSide.tails[j][k_out] + inSide.tails[j][k_in] ≤ budgets[j]`, with each rank at
    /// least its minimum. Feasible at `(p_out, p_in)`, where both tails are exactly 0.
    ///
    /// Why the sum of the two tails bounds member `j`'s error (`X` its normalized update, `P_U`, `P_V`
    /// the projections on the kept columns): `X − P_U X P_V = (I − P_U)X + P_U X (I − P_V)`, two terms
    /// with orthogonal column spaces, so `‖X − P_U X P_V‖² = ‖(I − P_U)X‖² + ‖P_U X (I − P_V)‖²
    /// ≤ ‖(I − P_U)X‖² + ‖X(I − P_V)‖²`, and these are exactly the two tails.
    ///
    /// - Complexity: `p_out · M · log p_in`.
    /// `members` counts the cores the bases will serve (by default the members with budgets; `bank
    /// add` also counts the existing members, whose cores grow with the ranks).
    static func choose(outSide: ModeBasis, inSide: ModeBasis, budgets: [Double], outFeatures: Int, inFeatures: Int,
                       minimumOut: Int = 1, minimumIn: Int = 1, members: Int? = nil) -> (out: Int, in: Int) {
        let pOut = outSide.count, pIn = inSide.count, constrained = budgets.count, members = members ?? budgets.count
        var best: (out: Int, in: Int, size: Int) = (pOut, pIn, outFeatures * pOut + inFeatures * pIn + members * pOut * pIn)
        let lowOut = min(max(minimumOut, 1), pOut), lowIn = min(max(minimumIn, 1), pIn)
        outer: for kOut in lowOut...pOut {
            var kIn = lowIn
            for j in 0..<constrained {
                let room = budgets[j] - outSide.tails[j][kOut]
                guard room >= 0 else { continue outer }
                // Smallest k with tails[j][k] ≤ room (tails are non-increasing in k, and 0 at p_in).
                var lo = kIn, hi = pIn
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if inSide.tails[j][mid] <= room { hi = mid } else { lo = mid + 1 }
                }
                kIn = lo
            }
            let size = outFeatures * kOut + inFeatures * kIn + members * kOut * kIn
            if size < best.size { best = (kOut, kIn, size) }
        }
        return (best.out, best.in)
    }
}
