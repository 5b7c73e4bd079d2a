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
            let g = core.doubles()
            let rest = q / n
            var next = [Double](repeating: 0, count: p * m * r1 * rest)
            for pi in 0..<p {
                for a in 0..<r0 {
                    for jn in 0..<n {
                        let gBase = (a * n + jn) * m * r1
                        for qi in 0..<rest {
                            let s = state[(pi * r0 + a) * q + jn * rest + qi]
                            if s == 0 { continue }
                            for i in 0..<m {
                                for b in 0..<r1 { next[((pi * m + i) * r1 + b) * rest + qi] += s * g[gBase + i * r1 + b] }
                            }
                        }
                    }
                }
            }
            state = next
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
