import TLoRAIO

/// TensorGuide's joint parameterization (jqi41/TT2LoRA): one tensor train generates both LoRA
/// factors of a module from a fixed latent vector.
///
/// Core `k` has shape `[r_{k−1}, n_k, m_k, r_k]` (`r_0 = r_d = 1`; `n_k` a latent mode, `m_k` a
/// generated mode — TT2LoRA's `TensorTrainLayer` order). With the latent `z` (`N = ∏ n_k` values,
/// shape `[1, N]` or `[N]`, index mixed-radix over `(n_1, …, n_d)`, first most significant), the
/// generated vector of length `L = ∏ m_k = r · (in + out)` is
/// `v[i_1 … i_d] = Σ_j z[j_1 … j_d] · G_1[0, j_1, i_1, :] · G_2[:, j_2, i_2, :] ⋯ G_d[:, j_d, i_d, 0]`
/// (row-major in `(m_1, …, m_d)`). Its first `in · r` values are `W1` (`in × r`, row-major), the
/// remaining `r · out` are `W2` (`r × out`, row-major), and the update is `U = W2ᵀ · W1ᵀ`, i.e. the
/// LoRA factors `A = W1ᵀ` (`r × in`) and `B = W2ᵀ` (`out × r`): TT2LoRA's `x · W1 · W2`.
public struct JointTrain: Sendable, Equatable {
    public var cores: [StoredTensor]
    public var latent: StoredTensor
    /// `r`, the inner dimension of the two generated factors.
    public var rank: Int

    public init(cores: [StoredTensor], latent: StoredTensor, rank: Int) {
        self.cores = cores
        self.latent = latent
        self.rank = rank
    }

    /// `n_k` for each core.
    public var latentModes: [Int] { cores.map { $0.shape[1] } }
    /// `m_k` for each core.
    public var generatedModes: [Int] { cores.map { $0.shape[2] } }
    /// `(r_0, r_1, …, r_d)`.
    public var ranks: [Int] { [cores.first?.shape[0] ?? 1] + cores.map { $0.shape[3] } }
    /// Cores and latent.
    public var parameterCount: Int { cores.reduce(latent.elementCount) { $0 + $1.elementCount } }
}
