import TLoRAModel
import TLoRANumerics

/// The two LoRA factors a joint train generates (docs/FORMAT.md §2.3, `joint_train`).
enum JointFactors {
    /// The generated vector `v` (length `∏ m_k`) in f64: the TT-matrix applied to the latent.
    ///
    /// Contracts core by core, keeping the state `S[p, a, q]` — `p` the generated digits so far
    /// (row-major), `a` the current bond, `q` the latent digits not yet consumed — so no matrix of
    /// size `L × N` is formed.
    /// - Complexity: `Σ_k L_k · N_k · r_{k−1} · r_k` with `L_k`, `N_k` the generated and remaining
    ///   latent sizes at core `k`.
    static func generated(_ j: JointTrain) -> [Double] {
        var state = j.latent.doubles()  // [P = 1, a = 1, Q = N]
        var p = 1, q = state.count
        for core in j.cores {
            let (r0, n, m, r1) = (core.shape[0], core.shape[1], core.shape[2], core.shape[3])
            let rest = q / n
            // S[p, (a, j_n), rest] ×₁ Gᵀ with G = core as (r0·n) × (m·r1): an n-mode product
            // (one GEMM per leading index) giving S'[p, (i_m, b), rest].
            let g = Matrix(rows: r0 * n, cols: m * r1, storage: core.doubles())
            state = TensorOps.modeProduct(Tensor(shape: [p, r0 * n, rest], storage: state), g.transposed(), mode: 1).storage
            p *= m
            q = rest
        }
        return state
    }

    /// `A = W1ᵀ` (`r × in`) and `B = W2ᵀ` (`out × r`) from `v = [vec(W1); vec(W2)]`, exactly.
    static func factors(_ j: JointTrain, outFeatures out: Int, inFeatures inn: Int) -> LowRankForm {
        let v = generated(j)
        let r = j.rank
        var a = Matrix<Double>(rows: r, cols: inn)
        var b = Matrix<Double>(rows: out, cols: r)
        for i in 0..<inn { for k in 0..<r { a[k, i] = v[i * r + k] } }
        let offset = inn * r
        for k in 0..<r { for o in 0..<out { b[o, k] = v[offset + k * out + o] } }
        return LowRankForm(b: b, a: a)
    }
}
