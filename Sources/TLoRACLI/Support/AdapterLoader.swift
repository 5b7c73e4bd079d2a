import TLoRAFormat
import TLoRAInterop
import TLoRAModel

/// Reads any supported adapter into memory.
enum AdapterLoader {
    static func load(_ path: String) throws -> Adapter {
        switch try InputKind.detect(path) {
        case .tlora: return try TLoRAFile(path: path).loadAdapter()
        case .peftDirectory: return try PEFTReader.read(directory: path)
        case .mlxDirectory: return try MLXAdapter.read(directory: path)
        case .gguf: throw CommandFailure("\(path): GGUF adapters are not supported yet")
        case .pickle: throw CommandFailure("\(path): a bare PyTorch archive is not an adapter directory; give the PEFT directory that holds it")
        case .safetensors, .checkpoint:
            throw CommandFailure("\(path): this is a checkpoint, not an adapter (expected a PEFT or MLX-LM directory, a GGUF adapter or a .tlora file)")
        }
    }
}
