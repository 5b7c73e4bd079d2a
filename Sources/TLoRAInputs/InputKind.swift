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
    /// A kohya, LyCORIS or diffusers-layout LoRA `.safetensors` file (`DiffusionAdapter`), or a folder
    /// holding diffusers' `pytorch_lora_weights.safetensors`.
    case diffusionAdapter
    /// A diffusers pipeline directory (`model_index.json`).
    case pipeline

    /// - Throws: `IOError` when the path is missing or not a file or directory, `InputError` when
    ///   it holds nothing tlora reads.
    public static func detect(_ path: String) throws -> InputKind {
        switch pathKind(path) {
        case .missing: throw IOError.notFound(path: path)
        case .other: throw IOError.notAFile(path: path)
        case .directory:
            if pathKind(joinPath(path, "adapter_config.json")) == .file {
                if pathKind(joinPath(path, "adapters.safetensors")) == .file { return .mlxDirectory }
            if pathKind(joinPath(path, ModelBase.Pipeline.indexName)) == .file { return .pipeline }
            if pathKind(joinPath(path, DiffusionAdapter.diffusersFileName)) == .file { return .diffusionAdapter }
                return .peftDirectory
            }
            if pathKind(joinPath(path, "adapters.safetensors")) == .file { return .mlxDirectory }
            if pathKind(joinPath(path, ModelBase.Pipeline.indexName)) == .file { return .pipeline }
            if pathKind(joinPath(path, DiffusionAdapter.diffusersFileName)) == .file { return .diffusionAdapter }
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
            if try looksLikeSafetensors(path, head: head) {
                // A research adapter's names decide; a damaged safetensors file stays a safetensors
                // input, whose reader gives the precise error.
                if (try? ResearchStateDict.detect(path: path)) ?? nil != nil { return .research }
                if let file = try? SafetensorsFile(path: path), DiffusionAdapter.layout(of: file.tensorNames) != nil { return .diffusionAdapter }
                return .safetensors
            }
            throw InputError.unrecognizedFile(path: path)
        }
    }
}

extension InputKind {
    /// A safetensors file starts with its header's length (little-endian u64, at most the rest of
    /// the file) and the header's `{`: a text file or any other binary is not taken for one. A file
    /// named `.safetensors` is one whatever it holds, so its reader says precisely what is wrong.
    static func looksLikeSafetensors(_ path: String, head: [UInt8]) throws -> Bool {
        guard head.count == 8 else { return false }
        if path.hasSuffix(".safetensors") { return true }
        let length = head.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let size = try fileSize(path: path)
        guard length >= 2, length <= UInt64(size - 8) else { return false }
        let brace = try readFileBytes(path: path, offset: 8, count: 1)
        return brace == [UInt8(ascii: "{")]
    }
}

extension InputKind {
    /// True when `path` holds a kohya, LyCORIS or diffusers LoRA.
    public static func isDiffusionAdapter(_ path: String) -> Bool { (try? detect(path)) == .diffusionAdapter }
}

extension InputKind {
    /// Words for messages ("a PEFT adapter directory").
    public var noun: String {
        switch self {
        case .tlora: return "a .tlora adapter"
        case .safetensors: return "a safetensors file"
        case .checkpoint: return "a checkpoint directory"
        case .gguf: return "a GGUF file"
        case .pickle: return "a PyTorch archive"
        case .peftDirectory: return "a PEFT adapter directory"
        case .mlxDirectory: return "an MLX-LM adapter directory"
        case .research: return "a research adapter's state dict"
        case .diffusionAdapter: return "a kohya, LyCORIS or diffusers LoRA"
        case .pipeline: return "a diffusers pipeline directory"
        }
    }

    /// What `path` is, in words, for a message that refuses it ("a JSON file", "a GGUF file").
    static func describe(_ path: String) -> String {
        if let kind = try? detect(path) {
            return kind.noun
        }
        if pathKind(path) == .directory { return "a directory without config.json or weights" }
        if path.hasSuffix(".json") || (try? readFileBytes(path: path, count: 1)) == [UInt8(ascii: "{")] { return "a JSON file" }
        return "a file tlora does not recognize"
    }

    /// Refuses anything but a checkpoint directory as a merge base, saying what was given.
    /// - Throws: `IOError.notFound`, `InputError.notABase`.
    public static func requireBase(_ path: String) throws {
        if pathKind(path) == .missing { throw IOError.notFound(path: path) }
        switch try? detect(path) {
        case .checkpoint?, .pipeline?, .safetensors?: return  // a directory, a pipeline, one weights file
        default: throw InputError.notABase(path: path, found: describe(path))
        }
    }

    /// Refuses anything but a checkpoint directory, a directory with `config.json`, a JSON file or
    /// a single safetensors file (the layer shapes research formats need) as `--base-config`.
    public static func requireBaseConfig(_ path: String) throws {
        switch pathKind(path) {
        case .missing: throw IOError.notFound(path: path)
        case .directory:
            if pathKind(joinPath(path, "config.json")) == .file || (try? detect(path)) == .checkpoint { return }
        case .file:
            if (try? readFileBytes(path: path, count: 1)) == [UInt8(ascii: "{")] { return }
            if (try? detect(path)) == .safetensors { return }
        case .other: break
        }
        let found = describe(path)
        throw InputError.notABaseConfig(path: path, found: found.hasPrefix("a single safetensors") ? "a safetensors file" : found)
    }
}
