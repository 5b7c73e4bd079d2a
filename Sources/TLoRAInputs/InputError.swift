import TLoRAInterop

/// A path that holds nothing tlora can read as the input asked for. The description is one line
/// that starts with the path; `code` says which case (a struct over a private enum, as swift-nio's
/// errors are, so cases can be added without breaking a caller's `switch`).
public struct InputError: Error, CustomStringConvertible, Equatable, Sendable {
    private enum Kind: Equatable, Sendable {
        case unrecognizedDirectory
        case unrecognizedFile
        case bareArchive
        case checkpointNotAdapter
        case notABase(found: String)
        case notABaseConfig(found: String)
        case notABank
    }

    /// What the path holds instead of the input asked for.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case unrecognizedDirectory, unrecognizedFile, bareArchive, checkpointNotAdapter, notABase, notABaseConfig, notABank
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        public static let unrecognizedDirectory = Code(.unrecognizedDirectory)
        public static let unrecognizedFile = Code(.unrecognizedFile)
        public static let bareArchive = Code(.bareArchive)
        public static let checkpointNotAdapter = Code(.checkpointNotAdapter)
        public static let notABase = Code(.notABase)
        public static let notABaseConfig = Code(.notABaseConfig)
        public static let notABank = Code(.notABank)

        public var description: String { "\(base)" }
    }

    private let kind: Kind
    /// What the path holds instead of the input asked for.
    public var code: Code {
        switch kind {
        case .unrecognizedDirectory: return .unrecognizedDirectory
        case .unrecognizedFile: return .unrecognizedFile
        case .bareArchive: return .bareArchive
        case .checkpointNotAdapter: return .checkpointNotAdapter
        case .notABase: return .notABase
        case .notABaseConfig: return .notABaseConfig
        case .notABank: return .notABank
        }
    }
    /// The path at fault.
    public let path: String

    private init(_ kind: Kind, path: String) {
        self.kind = kind
        self.path = path
    }

    /// A directory without `adapter_config.json`, `adapters.safetensors` or checkpoint weights.
    public static func unrecognizedDirectory(path: String) -> InputError { InputError(.unrecognizedDirectory, path: path) }
    /// A file that is not `.tlora`, safetensors, GGUF or a PyTorch archive.
    public static func unrecognizedFile(path: String) -> InputError { InputError(.unrecognizedFile, path: path) }
    /// A PyTorch archive given where its PEFT directory was meant.
    public static func bareArchive(path: String) -> InputError { InputError(.bareArchive, path: path) }
    /// A checkpoint (weights) given where an adapter was meant.
    public static func checkpointNotAdapter(path: String) -> InputError { InputError(.checkpointNotAdapter, path: path) }
    /// A bank member asked of an input that is not an adapter bank.
    public static func notABank(path: String) -> InputError { InputError(.notABank, path: path) }

    /// Something other than a checkpoint directory given as a base (`found` says what it is).
    public static func notABase(path: String, found: String) -> InputError { InputError(.notABase(found: found), path: path) }
    /// Something other than a checkpoint directory or config given as `--base-config`.
    public static func notABaseConfig(path: String, found: String) -> InputError { InputError(.notABaseConfig(found: found), path: path) }

    public var description: String {
        switch kind {
        case .unrecognizedDirectory:
            return "\(path): not an adapter or checkpoint directory (no adapter_config.json, adapters.safetensors, \(Checkpoint.singleName) or \(Checkpoint.indexName))"
        case .unrecognizedFile:
            return "\(path): unrecognized file (not .tlora, safetensors, GGUF or a PyTorch archive)"
        case .bareArchive:
            return "\(path): a bare PyTorch archive is not an adapter directory; give the PEFT directory that holds it"
        case .notABase(let found):
            return "\(path): a base must be a Hugging Face checkpoint directory (config.json with \(Checkpoint.singleName), "
                + "or the shards \(Checkpoint.indexName) lists), a diffusers pipeline directory (model_index.json) or a single .safetensors file; this is \(found)"
        case .notABaseConfig(let found):
            return "\(path): --base-config takes a base checkpoint directory or its config.json; this is \(found)"
        case .checkpointNotAdapter:
            return "\(path): this is a checkpoint, not an adapter (expected a PEFT or MLX-LM directory, a GGUF adapter or a .tlora file)"
        case .notABank:
            return "\(path): not an adapter bank, so it has no members (--member applies to banks made by tlora bank build)"
        }
    }
}
