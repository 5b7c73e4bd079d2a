/// One adapted layer of the base model and its update `ΔW = scale · update` (`out × in`).
public struct AdapterModule: Sendable, Equatable {
    /// The layer's path in the base model, e.g. `model.layers.0.self_attn.q_proj`.
    public var name: String
    /// The base tensor the update applies to, normally `name + ".weight"`.
    public var target: String
    public var kind: ModuleKind
    /// How the base stores the weight relative to the canonical `out × in`.
    public var layout: WeightLayout
    /// Rows of `ΔW` (output features; for an embedding, the embedding dimension).
    public var outFeatures: Int
    /// Columns of `ΔW` (input features; for an embedding, the vocabulary size).
    public var inFeatures: Int
    /// Multiplies the update: PEFT's `alpha / r` (or `alpha / √r` with rsLoRA), MLX's `scale`.
    public var scale: Double
    public var update: ModuleUpdate
    /// DoRA magnitude (one value per output feature, or per input channel with `doraAxis == .in`)
    /// when the adapter is DoRA.
    public var doraMagnitude: StoredTensor?
    /// Which norms DoRA fixes: the rows' (PEFT, LyCORIS `wd_on_out`) or the input channels'.
    public var doraAxis: FeatureAxis
    /// Added to each norm before dividing (LyCORIS adds the f32 machine epsilon; PEFT adds nothing).
    public var doraEpsilon: Double
    /// For a convolution, the kernel's spatial sizes (`[kh, kw]` for Conv2d); empty for other layers.
    /// `inFeatures` then counts `in_channels × ∏ kernel` columns and the base weight is
    /// `[out, in_channels, kernel…]`.
    public var kernel: [Int]
    /// A change of the layer's bias (`[out]`, LyCORIS `diff_b`), added as `scale · biasDelta`.
    public var biasDelta: StoredTensor?
    /// How this module was produced from another representation, when it was converted.
    public var conversion: ConversionRecord?
    /// Source-specific facts kept for a faithful export (e.g. `peft.r`, `peft.alpha`).
    public var attributes: [String: String]

    public init(name: String, target: String? = nil, kind: ModuleKind = .linear, layout: WeightLayout = .outIn,
                outFeatures: Int, inFeatures: Int, scale: Double, update: ModuleUpdate,
                doraMagnitude: StoredTensor? = nil, doraAxis: FeatureAxis = .out, doraEpsilon: Double = 0, kernel: [Int] = [],
                biasDelta: StoredTensor? = nil, conversion: ConversionRecord? = nil, attributes: [String: String] = [:]) {
        self.name = name
        self.target = target ?? name + ".weight"
        self.kind = kind
        self.layout = layout
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.scale = scale
        self.update = update
        self.doraMagnitude = doraMagnitude
        self.doraAxis = doraAxis
        self.doraEpsilon = doraEpsilon
        self.kernel = kernel
        self.biasDelta = biasDelta
        self.conversion = conversion
        self.attributes = attributes
    }

    /// The shape of the base tensor this module updates, in the base's own orientation.
    public var targetShape: [Int] {
        if !kernel.isEmpty { return [outFeatures, inChannels] + kernel }
        return layout == .outIn ? [outFeatures, inFeatures] : [inFeatures, outFeatures]
    }

    /// `∏ kernel` (1 for a layer that is not a convolution).
    public var kernelSize: Int { kernel.reduce(1, *) }

    /// Input channels of a convolution (`inFeatures / ∏ kernel`), input features otherwise.
    public var inChannels: Int { inFeatures / max(kernelSize, 1) }

    /// The base tensor `biasDelta` changes: the target with `.weight` replaced by `.bias`.
    public var biasTarget: String {
        target.hasSuffix(".weight") ? String(target.dropLast(".weight".count)) + ".bias" : target + ".bias"
    }
}

/// What kind of base layer a module adapts (matters for export naming; the math is in `layout`).
public enum ModuleKind: String, Sendable, Equatable, CaseIterable {
    case linear
    case embedding
}

/// Orientation of the base weight.
public enum WeightLayout: String, Sendable, Equatable, CaseIterable {
    /// Stored `out × in` (PyTorch `nn.Linear`): the base weight gets `ΔW`.
    case outIn = "out_in"
    /// Stored `in × out` (GPT-2 `Conv1D`, `nn.Embedding` as `vocab × dim`): the base weight gets `ΔWᵀ`.
    case inOut = "in_out"
}

/// The forms an update can take.
public enum ModuleUpdate: Sendable, Equatable {
    /// `ΔW = B · A` with `A` of shape `r × in` and `B` of shape `out × r`.
    case lowRank(a: StoredTensor, b: StoredTensor)
    /// A tensor train over the row and column indices of `ΔW`.
    case tensorTrain(TensorTrain)
    /// Slice `index` of a Tucker group's stacked tensor.
    case tuckerSlice(group: String, index: [Int])
    /// `ΔW` itself, `out × in`.
    case dense(StoredTensor)
    /// TensorGuide: one tensor train that generates both LoRA factors from a fixed latent.
    case jointTrain(JointTrain)
    /// `U = b · core · a`, a Tucker-2 conv kernel (LyCORIS LoCon with `lora_mid`).
    case convTucker(TuckerFactors)
    /// LoKr: `U = W1 ⊗ W2`.
    case kronecker(Kronecker)
    /// LoHa: `U = P1 ⊙ P2`.
    case hadamard(Hadamard)
    /// AdaLoRA: `U = B · diag(e) · A` with `A` `r × in`, `B` `out × r`, `e` `[r]` (`r ≥ 0`: pruning may
    /// leave a module with rank 0, whose update is zero).
    case diagonalLowRank(a: StoredTensor, b: StoredTensor, e: StoredTensor)
    /// VeRA: shared projections scaled per module.
    case vera(VeRAUpdate)
    /// IA³: a multiplicative rescaling of the weight; not a `ΔW`.
    case featureScale(FeatureScale)

    /// Which of the forms this is.
    public var kind: UpdateKind {
        switch self {
        case .lowRank: return .lowRank
        case .tensorTrain: return .tensorTrain
        case .tuckerSlice: return .tuckerSlice
        case .dense: return .dense
        case .jointTrain: return .jointTrain
        case .convTucker: return .convTucker
        case .kronecker: return .kronecker
        case .hadamard: return .hadamard
        case .diagonalLowRank: return .diagonalLowRank
        case .vera: return .vera
        case .featureScale: return .featureScale
        }
    }

    /// Every tensor the update holds itself (not a Tucker group's or shared projections').
    public var tensors: [StoredTensor] {
        switch self {
        case .lowRank(let a, let b): return [a, b]
        case .tensorTrain(let tt): return tt.cores
        case .tuckerSlice: return []
        case .dense(let d): return [d]
        case .jointTrain(let j): return j.cores + [j.latent]
        case .convTucker(let t): return t.tensors
        case .kronecker(let k): return k.w1.tensors + k.w2.tensors
        case .hadamard(let h): return h.p1.tensors + h.p2.tensors
        case .diagonalLowRank(let a, let b, let e): return [a, b, e]
        case .vera(let v): return [v.lambdaB, v.lambdaD]
        case .featureScale(let f): return [f.vector]
        }
    }

    /// False for IA³, which multiplies the weight instead of adding `ΔW` to it.
    public var isAdditive: Bool {
        if case .featureScale = self { return false }
        return true
    }
}

/// The name of each update form. The raw values are the words docs/FORMAT.md §2.3 gives them (the
/// `.tlora` header's `update.type`, `tlora inspect`'s kind column): never rename one.
public enum UpdateKind: String, Sendable, Equatable, CaseIterable {
    case lowRank = "low_rank"
    case tensorTrain = "tensor_train"
    case tuckerSlice = "tucker_slice"
    case dense
    case jointTrain = "joint_train"
    case convTucker = "conv_tucker"
    case kronecker
    case hadamard
    case diagonalLowRank = "low_rank_diagonal"
    case vera
    case featureScale = "ia3"
    /// A core in an adapter bank's shared bases (`BankModule`; only inside a bank's members, so no
    /// `ModuleUpdate` has this kind).
    case bankCore = "bank_core"
}

/// A tensor train for a matrix `ΔW` (out × in).
///
/// Core `k` has shape `[r_{k−1}, m_k, n_k, r_k]` with `r_0 = r_d = 1`. Row index `i` of `ΔW` is the
/// mixed-radix number of `(i_1, …, i_d)` over `(m_1, …, m_d)` with `i_1` most significant (row-major),
/// column index `j` likewise over `(n_1, …, n_d)`, and
/// `ΔW[i, j] = G_1[:, i_1, j_1, :] · G_2[:, i_2, j_2, :] ⋯ G_d[:, i_d, j_d, :]`.
/// A mode absent from a core has size 1, so one description covers the TT-LoRA layout (row cores
/// `m_k > 1, n_k = 1` then column cores), the reverse order, and the interleaved TT-matrix layout.
///
/// `rowOrder` / `columnOrder` = `.reversed` make the FIRST core's digit the least significant one
/// instead (`j = (…(j_d · n_{d−1} + j_{d−1})…) · n_1 + j_1`): lanl/TTLoRAMoE's contraction reads
/// its input factors that way, and reordering the cores instead would change the train.
public struct TensorTrain: Sendable, Equatable {
    public var cores: [StoredTensor]
    /// How the row digits `i_k` combine into the row index.
    public var rowOrder: DigitOrder
    /// How the column digits `j_k` combine into the column index.
    public var columnOrder: DigitOrder

    public init(cores: [StoredTensor], rowOrder: DigitOrder = .forward, columnOrder: DigitOrder = .forward) {
        self.cores = cores
        self.rowOrder = rowOrder
        self.columnOrder = columnOrder
    }

    /// True when both indices use the default order (a version 1.0 reader can read the train).
    public var hasDefaultOrder: Bool { rowOrder == .forward && columnOrder == .forward }

    /// `m_k` for each core.
    public var rowModes: [Int] { cores.map { $0.shape[1] } }
    /// `n_k` for each core.
    public var columnModes: [Int] { cores.map { $0.shape[2] } }
    /// `(r_0, r_1, …, r_d)`.
    public var ranks: [Int] { [cores.first?.shape[0] ?? 1] + cores.map { $0.shape[3] } }
    public var parameterCount: Int { cores.reduce(0) { $0 + $1.elementCount } }
}

/// How a module was derived: the algorithm, the bound asked for, and the error measured afterwards.
public struct ConversionRecord: Sendable, Equatable {
    /// "tt-svd", "tt-round", "st-hosvd", "hooi", "svd-truncate", …
    public var method: String
    /// The requested bound on ‖ΔW − ΔŴ‖_F / ‖ΔW‖_F, if one was requested.
    public var maxRelativeError: Double?
    /// The achieved relative Frobenius error, measured after conversion.
    public var relativeError: Double?
    /// Parameters of the update before conversion.
    public var sourceParameters: Int?
    /// Free-form notes (e.g. which modules could not be stacked and why).
    public var note: String?

    public init(method: String, maxRelativeError: Double? = nil, relativeError: Double? = nil,
                sourceParameters: Int? = nil, note: String? = nil) {
        self.method = method
        self.maxRelativeError = maxRelativeError
        self.relativeError = relativeError
        self.sourceParameters = sourceParameters
        self.note = note
    }
}

/// The significance of a tensor train's mode digits within a row or column index.
public enum DigitOrder: String, Sendable, Equatable, CaseIterable {
    /// The first core's digit is the most significant (row-major; the default).
    case forward
    /// The first core's digit is the least significant.
    case reversed

    /// `perm[f]` = the index under this order of the index `f` that the forward order gives to the
    /// same digits (`modes` in core order, product `n`). The identity for `.forward`.
    public func permutation(modes: [Int]) -> [Int] {
        let n = modes.reduce(1, *)
        guard self == .reversed, modes.count > 1 else { return Array(0..<n) }
        var perm = [Int](repeating: 0, count: n)
        var digits = [Int](repeating: 0, count: modes.count)
        for f in 0..<n {
            // digits of f, first mode most significant
            var rest = f
            for k in stride(from: modes.count - 1, through: 0, by: -1) {
                digits[k] = rest % modes[k]
                rest /= modes[k]
            }
            // reversed: first mode least significant
            var j = 0
            for k in stride(from: modes.count - 1, through: 0, by: -1) { j = j * modes[k] + digits[k] }
            perm[f] = j
        }
        return perm
    }
}
