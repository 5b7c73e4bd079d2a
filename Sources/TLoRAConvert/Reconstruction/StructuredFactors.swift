import TLoRAModel
import TLoRANumerics

/// Exact factors and dense forms of the structured updates (docs/FORMAT.md §2.3, forms 6–11), in f64.
///
/// Each form has exact low-rank factors `U = B · A` that never need the dense matrix:
/// - Tucker-2: `B = b`, `A[i, q·K + s] = Σ_j core[i, j, s] · a[j, q]` (rank `r1`);
/// - Kronecker: `(B1 A1) ⊗ (B2 A2) = (B1 ⊗ B2)(A1 ⊗ A2)` (rank `r(W1) · r(W2)`);
/// - Hadamard: `(B1 A1) ⊙ (B2 A2) = (B1 ∗ B2)(A1 • A2)` with the row-wise Khatri–Rao product
///   `(B1 ∗ B2)[o, p·r2 + q] = B1[o, p] · B2[o, q]` and the column-wise one
///   `(A1 • A2)[p·r2 + q, i] = A1[p, i] · A2[q, i]` (rank `r1 · r2`);
/// - diagonal: `B · diag(e)`, `A`; VeRA: `diag(λ_b) · B_s[:out]`, `diag(λ_d) · A_s[:, :in]`.
package enum StructuredFactors {
    /// The exact factors of a factor matrix; a full matrix is `I · W` or `W · I`, whichever is thinner.
    package static func lowRank(_ f: FactorMatrix) -> LowRankForm {
        switch f {
        case .full(let w):
            let m = w.matrix()
            return m.rows <= m.cols ? LowRankForm(b: Matrix.identity(m.rows), a: m) : LowRankForm(b: m, a: Matrix.identity(m.cols))
        case .lowRank(let a, let b):
            return LowRankForm(b: b.matrix(), a: a.matrix())
        case .tucker(let t):
            return tucker(t)
        }
    }

    /// `b` and the core contracted with `a`: `A[i, q·K + s] = Σ_j core[i, j, s] · a[j, q]`.
    package static func tucker(_ t: TuckerFactors) -> LowRankForm {
        let (r1, r2, k) = (t.core.shape[0], t.core.shape[1], t.kernelSize)
        let a = t.a.matrix()  // r2 × channels
        let core = t.core.doubles()  // [r1, r2, K]
        var out = Matrix<Double>(rows: r1, cols: a.cols * k)
        for i in 0..<r1 {
            // (aᵀ · core_i)[q, s], core_i = core[i] as r2 × K: one small GEMM per core row.
            let ci = Matrix(rows: r2, cols: k, storage: Array(core[(i * r2 * k)..<((i + 1) * r2 * k)]))
            let prod = LA.mul(a, ci, ta: true)  // channels × K
            for j in 0..<prod.storage.count { out.storage[i * out.cols + j] = prod.storage[j] }
        }
        return LowRankForm(b: t.b.matrix(), a: out)
    }

    /// The dense `rows × cols` matrix of a factor.
    package static func dense(_ f: FactorMatrix) -> Matrix<Double> {
        if case .full(let w) = f { return w.matrix() }
        return lowRank(f).dense
    }

    package static func kronecker(_ k: Kronecker) -> LowRankForm {
        let x = lowRank(k.w1), y = lowRank(k.w2)
        return LowRankForm(b: LowRankForm.kronecker(x.b, y.b), a: LowRankForm.kronecker(x.a, y.a))
    }

    package static func hadamard(_ h: Hadamard) -> LowRankForm {
        let x = lowRank(h.p1), y = lowRank(h.p2)
        let (r1, r2) = (x.rank, y.rank)
        var b = Matrix<Double>(rows: x.b.rows, cols: r1 * r2)
        for o in 0..<b.rows {
            for p in 0..<r1 { for q in 0..<r2 { b[o, p * r2 + q] = x.b[o, p] * y.b[o, q] } }
        }
        var a = Matrix<Double>(rows: r1 * r2, cols: x.a.cols)
        for p in 0..<r1 {
            for q in 0..<r2 { for i in 0..<a.cols { a[p * r2 + q, i] = x.a[p, i] * y.a[q, i] } }
        }
        return LowRankForm(b: b, a: a)
    }

    /// `B · diag(e)` and `A`; a rank-0 update (AdaLoRA pruned every direction) as a zero rank-1 pair,
    /// so every consumer sees a valid, exactly zero, form.
    package static func diagonal(a: StoredTensor, b: StoredTensor, e: StoredTensor) -> LowRankForm {
        let r = a.shape[0]
        guard r > 0 else { return LowRankForm(b: Matrix(rows: b.shape[0], cols: 1), a: Matrix(rows: 1, cols: a.shape[1])) }
        var bm = b.matrix()
        let ev = e.doubles()
        for o in 0..<bm.rows { for k in 0..<r { bm[o, k] *= ev[k] } }
        return LowRankForm(b: bm, a: a.matrix())
    }

    /// `diag(λ_b) · B[:out, :]` and `diag(λ_d) · A[:, :in]`.
    package static func vera(_ v: VeRAUpdate, pair: ProjectionPair, outFeatures: Int, inFeatures: Int) -> LowRankForm {
        let r = pair.rank
        let fullA = pair.a.matrix(), fullB = pair.b.matrix()
        let lb = v.lambdaB.doubles(), ld = v.lambdaD.doubles()
        var b = Matrix<Double>(rows: outFeatures, cols: r)
        for o in 0..<outFeatures { for k in 0..<r { b[o, k] = lb[o] * fullB[o, k] } }
        var a = Matrix<Double>(rows: r, cols: inFeatures)
        for k in 0..<r { for i in 0..<inFeatures { a[k, i] = ld[k] * fullA[k, i] } }
        return LowRankForm(b: b, a: a)
    }

    /// The refusal for forms without a `ΔW`.
    package static func notAdditive(_ m: AdapterModule) -> ConvertError {
        ConvertError(.notSupported, "module \(m.name) is an IA³ rescaling (W ⊙ v): it has no ΔW without the base weight; merge and export take it, conversions and comparisons do not")
    }
}
