import TLoRAModel
import TLoRANumerics

/// The SVD of a Kronecker product from the SVDs of its halves: with `W1 = U1 S1 V1ᵀ` and
/// `W2 = U2 S2 V2ᵀ`, `W1 ⊗ W2 = (U1 ⊗ U2)(S1 ⊗ S2)(V1 ⊗ V2)ᵀ`, whose singular values are the
/// products `s1_i · s2_j` with vectors `u1_i ⊗ u2_j` and `v1_i ⊗ v2_j` (Van Loan, "The ubiquitous
/// Kronecker product", 2000). Each half's SVD comes from its own factors (`FactoredSVD`), so a
/// 2048 × 2048 LoKr costs two SVDs of at most 64 × 64 instead of one of 2048 × 2048, and only the
/// singular vectors that are kept are ever formed.
struct KroneckerSVD {
    let first: FactoredSVD
    let second: FactoredSVD
    /// `(s, i, j)` for every pair, `s = s1_i · s2_j` descending.
    let pairs: [(s: Double, i: Int, j: Int)]

    init(_ k: Kronecker) {
        first = FactoredSVD(StructuredFactors.lowRank(k.w1))
        second = FactoredSVD(StructuredFactors.lowRank(k.w2))
        var p: [(s: Double, i: Int, j: Int)] = []
        p.reserveCapacity(first.s.count * second.s.count)
        for (i, x) in first.s.enumerated() { for (j, y) in second.s.enumerated() { p.append((x * y, i, j)) } }
        pairs = p.sorted { $0.s > $1.s }
    }

    var singularValues: [Double] { pairs.map(\.s) }

    /// `B = U_k √S_k` and `A = √S_k V_kᵀ` for the `rank` largest singular values.
    func balancedFactors(rank: Int) -> LowRankForm {
        let (u1, u2, v1, v2) = (first.u, second.u, first.vt, second.vt)
        var b = Matrix<Double>(rows: u1.rows * u2.rows, cols: rank)
        var a = Matrix<Double>(rows: rank, cols: v1.cols * v2.cols)
        for (k, pair) in pairs.prefix(rank).enumerated() {
            let root = pair.s.squareRoot()
            for x in 0..<u1.rows {
                let f = u1[x, pair.i] * root
                for y in 0..<u2.rows { b[x * u2.rows + y, k] = f * u2[y, pair.j] }
            }
            for x in 0..<v1.cols {
                let f = v1[pair.i, x] * root
                for y in 0..<v2.cols { a[k, x * v2.cols + y] = f * v2[pair.j, y] }
            }
        }
        return LowRankForm(b: b, a: a)
    }
}

extension KroneckerSVD {
    /// ‖B̂Â − U S Vᵀ‖_F when every nonzero singular value was kept, so the only error is the rounding
    /// of the balanced factors to their storage dtype: with `B = U√S`, `A = √S Vᵀ` (exact, f64) and
    /// the stored `B̂ = B + δB`, `Â = A + δA`, the difference is `δB·Â + U√S·δA`, whose squared norm is
    /// `tr((δBᵀδB)(ÂÂᵀ)) + Σ_i s_i ‖δA_i‖² + 2 tr((δBᵀU)(√S δA Âᵀ))` — k × k Grams of out × k and
    /// k × in factors, where the general measure (`ErrorMeasure`) needs two QRs of out × 2k. Nothing
    /// large cancels: every term is already of the size of the rounding.
    static func roundingError(exact: LowRankForm, storedB: Matrix<Double>, storedA: Matrix<Double>, singularValues s: [Double]) -> Double {
        let k = exact.rank
        var dB = storedB, dA = storedA
        for i in dB.storage.indices { dB.storage[i] -= exact.b.storage[i] }
        for i in dA.storage.indices { dA.storage[i] -= exact.a.storage[i] }
        let g1 = LA.mul(dB, dB, ta: true)  // k × k
        let g2 = LA.mul(storedA, storedA, tb: true)
        let c1 = LA.mul(dB, exact.b, ta: true)  // δBᵀ · U√S
        let c2 = LA.mul(dA, storedA, tb: true)  // δA · Âᵀ
        var sum = 0.0
        for i in 0..<k {
            for j in 0..<k {
                sum += g1[i, j] * g2[j, i]
                // (δBᵀU)[i, j] = c1[i, j] / √s_j, (√S δA Âᵀ)[j, i] = √s_j c2[j, i]: the roots cancel.
                sum += 2 * c1[i, j] * c2[j, i]
            }
            var row = 0.0
            for c in 0..<dA.cols { row += dA[i, c] * dA[i, c] }
            sum += s[i] * row
        }
        return max(sum, 0).squareRoot()
    }
}
