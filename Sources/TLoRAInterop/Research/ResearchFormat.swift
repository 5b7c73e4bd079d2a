import TLoRAIO
import TLoRAModel

/// The research adapters tlora reads from bare state dicts (safetensors or a `torch.save` zip):
/// which one a file holds is decided from its tensor names.
public enum ResearchFormat: String, Sendable, CaseIterable {
    /// lanl/TTLoRAMoE: `<module>.tt_cores.<k>`, 3-D cores `r × n × r'`, input factors then output factors.
    case ttLoRA = "ttlora"
    /// jqi41/TT2LoRA (TensorGuide): `<module>.tt_layer.tt_cores.<k>` (4-D) and `<module>.z_latent`.
    case tensorGuide = "tensorguide"
    /// ax-le/TensLoRA: `<module>.adapter.tensor_lora_module.tucker_core` / `.tucker_factors.<i>`.
    case tensLoRA = "tenslora"

    /// The tool that writes the format, for messages and metadata.
    public var sourceName: String {
        switch self {
        case .ttLoRA: return "TTLoRAMoE (TT-LoRA)"
        case .tensorGuide: return "TT2LoRA (TensorGuide)"
        case .tensLoRA: return "TensLoRA"
        }
    }

    /// The format whose tensor names these are, or nil for any other state dict.
    public static func detect(names: [String]) -> ResearchFormat? {
        if names.contains(where: { $0.contains(".tt_layer.tt_cores.") || $0.hasSuffix(".z_latent") || $0 == "z_latent" }) { return .tensorGuide }
        if names.contains(where: { $0.contains(".tensor_lora_module.tucker_") || $0.contains(".tensor_lora_module.cp_") }) { return .tensLoRA }
        if names.contains(where: { $0.contains(".tt_cores.") }) { return .ttLoRA }
        return nil
    }
}

/// What a research state dict does not record and the command line supplies (docs/CLI.md,
/// "Research formats").
public struct ResearchOptions: Sendable {
    /// The factor the research code multiplies the update by: TTLoRAMoE's `alpha`, TT2LoRA's
    /// `scale`, TensLoRA's `scaling`. No default: each tool has a different one.
    public var alpha: Double?
    /// TensLoRA's `tensor_method` (`att`, `qkv`, `depth`, `att_qkv`, `att_depth`, `qkv_depth`, `att_qkv_depth`).
    public var construction: String?
    /// Removed from the front of every module name (e.g. PyTorch Lightning's `model.`).
    public var stripPrefix: String?
    /// The base model's weight shapes (TT-LoRA and TensorGuide state dicts do not say where the input
    /// modes end or how long each factor is).
    public var baseShapes: BaseShapes?
    /// Which TTLoRAMoE wrapper wrote a TT-LoRA state dict: both save `<module>.tt_cores.<k>`, with
    /// different meanings. Needed when the shapes fit both.
    public var ttLoRALayout: TTLoRALayout?

    public init(alpha: Double? = nil, construction: String? = nil, stripPrefix: String? = nil, baseShapes: BaseShapes? = nil,
                ttLoRALayout: TTLoRALayout? = nil) {
        self.alpha = alpha
        self.construction = construction
        self.stripPrefix = stripPrefix
        self.baseShapes = baseShapes
        self.ttLoRALayout = ttLoRALayout
    }
}

/// lanl/TTLoRAMoE's two wrappers, which store the same `tt_cores` names.
public enum TTLoRALayout: String, Sendable, CaseIterable {
    /// `TTLoRALinearWrapper_Contraction`: input-factor cores then output-factor cores, applied by
    /// `tensorized_multiplication` (input digits least significant first).
    case contraction
    /// `TTLoRALinearWrapper_Reconstruction`: the cores contracted into one tensor of the modes in
    /// order, reshaped row-major to the weight's `[out, in]`.
    case reconstruction
}

/// Weight shapes of a base checkpoint, from its safetensors headers.
public struct BaseShapes: Sendable {
    public let path: String
    let shapes: [String: [Int]]

    public init(path: String, shapes: [String: [Int]]) {
        self.path = path
        self.shapes = shapes
    }

    public init(checkpoint: Checkpoint) {
        var shapes: [String: [Int]] = [:]
        for shard in checkpoint.shards { for e in shard.entries { shapes[e.name] = e.shape } }
        self.init(path: checkpoint.path, shapes: shapes)
    }

    /// The shapes of a base model's weights: `base` is a checkpoint directory or a single
    /// safetensors file; nil for a directory without weights or a `.json` config file.
    public init?(base: String) throws {
        let isCheckpoint = pathKind(base) == .file ? !base.hasSuffix(".json")
            : pathKind(joinPath(base, Checkpoint.singleName)) == .file || pathKind(joinPath(base, Checkpoint.indexName)) == .file
        guard isCheckpoint else { return nil }
        self.init(checkpoint: try Checkpoint(path: base))
    }

    /// `[out, in]` of `<module>.weight` (a task head's or causal LM's prefix may differ, as in merges).
    public func weightShape(of module: String) -> [Int]? {
        tensorShape(of: module).flatMap { $0.count == 2 ? $0 : nil }
    }

    /// The full shape of `<module>.weight` (4-D for a Conv2d), found the same way.
    public func tensorShape(of module: String) -> [Int]? {
        let name = module + ".weight"
        if let s = shapes[name] { return s }
        var found: [[Int]] = []
        for p in ["model.", "bert.", "roberta.", "transformer.", "base_model.", "encoder."] {
            if name.hasPrefix(p), let s = shapes[String(name.dropFirst(p.count))] { found.append(s) }
            if let s = shapes[p + name] { found.append(s) }
        }
        return found.count == 1 ? found[0] : nil
    }
}
