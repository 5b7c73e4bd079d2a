import TLoRAFormat
import TLoRAInterop
import TLoRAModel

/// Reads any supported adapter into memory.
enum AdapterLoader {
    static func load(_ path: String, options: AdapterSourceOptions) throws -> Adapter {
        try load(path, heads: try options.resolvedHeads(), research: try options.resolvedResearch())
    }

    static func load(_ path: String, heads: GGUFAdapter.Heads? = nil, headsRequired: Bool = true,
                     research: ResearchOptions = ResearchOptions()) throws -> Adapter {
        switch try InputKind.detect(path) {
        case .research: return try ResearchStateDict.read(path: path, options: research)
        case .tlora: return try TLoRAFile(path: path).loadAdapter()
        case .peftDirectory: return try PEFTReader.read(directory: path)
        case .mlxDirectory: return try MLXAdapter.read(directory: path)
        case .gguf: return try GGUFAdapter.read(path: path, heads: heads, headsRequired: headsRequired)
        case .pickle: throw CommandFailure("\(path): a bare PyTorch archive is not an adapter directory; give the PEFT directory that holds it")
        case .safetensors, .checkpoint:
            throw CommandFailure("\(path): this is a checkpoint, not an adapter (expected a PEFT or MLX-LM directory, a GGUF adapter or a .tlora file)")
        }
    }
}
