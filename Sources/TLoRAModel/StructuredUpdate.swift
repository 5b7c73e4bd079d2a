/// The pieces of the structured updates LyCORIS and PEFT train besides LoRA (docs/FORMAT.md §2.3).
///
/// Every piece is a matrix `rows × cols` in the canonical orientation. For a convolution the columns
/// are the flattened `in_channels × kernel` index (PyTorch's row-major weight layout, kernel
/// position fastest), so a conv update is a matrix like any other and only the merge reshapes.

/// `M[p, q · K + s] = Σ_{i,j} b[p, i] · core[i, j, s] · a[j, q]`: a Tucker-2 decomposition of a
/// conv kernel (LyCORIS `lora_mid`, `hada_t1`/`hada_t2`, `lokr_t2`; PEFT `use_effective_conv2d`).
///
/// `core` is `[r1, r2, k_1, …, k_n]` (`n ≥ 1`, `K = ∏ k`, `s` the kernel position in row-major
/// order), `b` is `[rows, r1]` and `a` is `[r2, channels]`, so `M` is `rows × (channels · K)`.
/// The factors are kept as `b` (out side) and `a` (in side) like LoRA's `B` and `A`; LyCORIS stores
/// the out-side factor of LoHa and LoKr transposed (`[r1, rows]`) and the readers transpose it exactly.
public struct TuckerFactors: Sendable, Equatable {
    public var core: StoredTensor
    public var a: StoredTensor
    public var b: StoredTensor

    public init(core: StoredTensor, a: StoredTensor, b: StoredTensor) {
        self.core = core
        self.a = a
        self.b = b
    }

    /// `K`, the number of kernel positions.
    public var kernelSize: Int { core.shape.dropFirst(2).reduce(1, *) }
    public var rows: Int { b.shape[0] }
    public var cols: Int { a.shape[1] * kernelSize }
    public var tensors: [StoredTensor] { [core, a, b] }
}

/// One side of a Kronecker or Hadamard product, a `rows × cols` matrix.
public enum FactorMatrix: Sendable, Equatable {
    /// The matrix itself, `[rows, cols]`.
    case full(StoredTensor)
    /// `b · a` with `b` `[rows, r]` and `a` `[r, cols]` (LyCORIS `…_a` is `b`, `…_b` is `a`).
    case lowRank(a: StoredTensor, b: StoredTensor)
    /// A Tucker-2 conv factor.
    case tucker(TuckerFactors)

    public var tensors: [StoredTensor] {
        switch self {
        case .full(let m): return [m]
        case .lowRank(let a, let b): return [a, b]
        case .tucker(let t): return t.tensors
        }
    }
}

/// LoKr: `U = W1 ⊗ W2` (Kronecker product). With `W1` `a × c` and `W2` `b × e`,
/// `U[i · b + p, j · e + q] = W1[i, j] · W2[p, q]`: `out = a · b`, `in = c · e`. For a convolution
/// `W2`'s columns carry the kernel (`e = d · K`), `W1` has none.
public struct Kronecker: Sendable, Equatable {
    public var w1: FactorMatrix
    public var w2: FactorMatrix

    public init(w1: FactorMatrix, w2: FactorMatrix) {
        self.w1 = w1
        self.w2 = w2
    }
}

/// LoHa: `U = P1 ⊙ P2` (element-wise product) of two low-rank or two Tucker-2 matrices.
public struct Hadamard: Sendable, Equatable {
    public var p1: FactorMatrix
    public var p2: FactorMatrix

    public init(p1: FactorMatrix, p2: FactorMatrix) {
        self.p1 = p1
        self.p2 = p2
    }
}

/// VeRA: `U = diag(λ_b) · B[:out, :] · diag(λ_d) · A[:, :in]` with `A` (`r × maxIn`) and `B`
/// (`maxOut × r`) shared by every module (`Adapter.projections`).
public struct VeRAUpdate: Sendable, Equatable {
    /// The `ProjectionPair` this module slices.
    public var projections: String
    /// `[out]`.
    public var lambdaB: StoredTensor
    /// `[r]`.
    public var lambdaD: StoredTensor

    public init(projections: String, lambdaB: StoredTensor, lambdaD: StoredTensor) {
        self.projections = projections
        self.lambdaB = lambdaB
        self.lambdaD = lambdaD
    }
}

/// The shared random projections of VeRA: `a` is `[r, maxIn]`, `b` is `[maxOut, r]`.
public struct ProjectionPair: Sendable, Equatable {
    public var name: String
    public var a: StoredTensor
    public var b: StoredTensor

    public init(name: String, a: StoredTensor, b: StoredTensor) {
        self.name = name
        self.a = a
        self.b = b
    }

    public var rank: Int { a.shape.first ?? 0 }
}

/// Which index of `W` a vector scales: the output features (rows) or the input channels (columns;
/// for a convolution every kernel position of the channel).
public enum FeatureAxis: String, Sendable, Equatable, CaseIterable {
    case out
    case `in`
}

/// IA³: the layer's weight is multiplied, not added to: `W' = W ⊙ v` along `axis` (rows for `out`,
/// input channels for `in`), and a bias `β' = β ⊙ v` when `axis` is `out`. There is no `ΔW` without
/// the base weight, so only merge, inspect and export take it.
public struct FeatureScale: Sendable, Equatable {
    public var vector: StoredTensor
    public var axis: FeatureAxis

    public init(vector: StoredTensor, axis: FeatureAxis) {
        self.vector = vector
        self.axis = axis
    }
}
