import TLoRAFormat
import TLoRAInterop
import TLoRAModel

/// Reads any supported adapter into memory, whatever its format (`InputKind`).
public enum AdapterLoader {
    /// - Parameters:
    ///   - heads: attention head counts, which GGUF adapters of Llama-family models need to undo
    ///     llama.cpp's q/k permutation; `headsRequired: false` (inspecting shapes only) leaves
    ///     permuted factors as stored instead of failing.
    ///   - research: what the research formats' bare state dicts do not record.
    ///   - member: for an adapter bank, the member to read (as a LoRA of the bank's shared rank).
    /// - Throws: `InputError` when the path is not an adapter (or, with `member`, not a bank), or the
    ///   reader's error.
    public static func load(_ path: String, heads: GGUFAdapter.Heads? = nil, headsRequired: Bool = true,
                            research: ResearchOptions = ResearchOptions(), member: String? = nil) throws -> Adapter {
        let kind = try InputKind.detect(path)
        if let member {
            guard kind == .tlora else { throw InputError.notABank(path: path) }
            let file = try TLoRAFile(path: path)
            guard file.isBank else { throw InputError.notABank(path: path) }
            return try file.loadBankMember(member)
        }
        switch kind {
        case .research: return try ResearchStateDict.read(path: path, options: research)
        case .tlora: return try TLoRAFile(path: path).loadAdapter()
        case .peftDirectory: return try PEFTReader.read(directory: path, base: research.baseShapes)
        case .mlxDirectory: return try MLXAdapter.read(directory: path)
        case .gguf: return try GGUFAdapter.read(path: path, heads: heads, headsRequired: headsRequired)
        case .diffusionAdapter:
            var adapter = try DiffusionAdapter.read(path: path)
            // A LyCORIS file of one model names its modules by flattened keys: with a base's names
            // (its weights, or a Llama-family config.json) they become the base's module paths.
            if let base = research.baseShapes, adapter.modules.contains(where: { $0.attributes["kohya.prefix"] == "lycoris_" }) {
                try LyCORISNames.resolve(&adapter, tensorNames: base.tensorNames, path: path)
            }
            return adapter
        case .pickle: throw InputError.bareArchive(path: path)
        case .safetensors, .checkpoint, .pipeline: throw InputError.checkpointNotAdapter(path: path)
        }
    }

    /// Reads an adapter trained on `base` (a checkpoint directory or file): the head counts GGUF
    /// adapters need come from the base's `config.json`, the layer shapes research state dicts
    /// need from its weights.
    public static func load(_ path: String, base: String, research: ResearchOptions = ResearchOptions(), member: String? = nil) throws -> Adapter {
        var research = research
        if research.baseShapes == nil, member == nil { research.baseShapes = try BaseShapes.of(base: base) }
        return try load(path, heads: try GGUFAdapter.Heads(configAt: base), research: research, member: member)
    }
}
