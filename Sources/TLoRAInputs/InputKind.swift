import TLoRAFormat
import TLoRAInterop
import TLoRAIO

/// What a path given on the command line holds, decided from its contents, not its name.
public enum InputKind: Equatable, Sendable {
    case tlora
    case safetensors
    case checkpoint
    case gguf
    case pickle
    case peftDirectory
    case mlxDirectory
    /// A bare state dict (safetensors or PyTorch zip) of TT-LoRA, TensorGuide or TensLoRA.
    case research

    /// - Throws: `IOError` when the path is missing or not a file or directory, `InputError` when
    ///   it holds nothing tlora reads.
    public static func detect(_ path: String) throws -> InputKind {
        switch pathKind(path) {
        case .missing: throw IOError.notFound(path: path)
        case .other: throw IOError.notAFile(path: path)
        case .directory:
            if pathKind(joinPath(path, "adapter_config.json")) == .file {
                if pathKind(joinPath(path, "adapters.safetensors")) == .file { return .mlxDirectory }
                return .peftDirectory
            }
            if pathKind(joinPath(path, "adapters.safetensors")) == .file { return .mlxDirectory }
            if pathKind(joinPath(path, Checkpoint.indexName)) == .file || pathKind(joinPath(path, Checkpoint.singleName)) == .file {
                return .checkpoint
            }
            throw InputError.unrecognizedDirectory(path: path)
        case .file:
            let head = try readFileBytes(path: path, count: 8)
            if head == ContainerLayout.magic { return .tlora }
            if head.count >= 4, head[0..<4].elementsEqual(Array("GGUF".utf8)) { return .gguf }
            if head.count >= 4, head[0] == 0x50, head[1] == 0x4B, head[2] == 0x03, head[3] == 0x04 {
                return try ResearchStateDict.detect(path: path) == nil ? .pickle : .research
            }
            if head.count == 8 {
                // A research adapter's names decide; anything that is not even safetensors stays a
                // safetensors input, whose reader gives the precise error.
                if (try? ResearchStateDict.detect(path: path)) ?? nil != nil { return .research }
                return .safetensors
            }
            throw InputError.unrecognizedFile(path: path)
        }
    }
}
