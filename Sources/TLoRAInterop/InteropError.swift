/// Why a foreign file (safetensors, PEFT, MLX, GGUF, pickle, checkpoint, kohya/LyCORIS, diffusers)
/// was refused. The message always starts with the file or directory at fault.
///
/// A struct with a `code` over a private enum (as swift-nio's errors are), so kinds can be added
/// without breaking a caller's `switch`: match on `code`, read the one-line `description`.
public struct InteropError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What kind of problem the file has.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case general, unrecognized, malformed, invalidConfig, missingFile, missingTensor, unexpectedTensor
            case shapeMismatch, unsupported, nonFiniteValues, needsOption, unmatchedNames, invalidAdapter
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Not yet given a kind of its own (what `InteropError(_:_:)` makes).
        public static let general = Code(.general)
        /// Not a file of the format asked for (wrong magic, none of its tensor names).
        public static let unrecognized = Code(.unrecognized)
        /// The format's own structure is broken: truncated, overlapping, invalid header, index or
        /// archive, a refused pickle.
        public static let malformed = Code(.malformed)
        /// A config or metadata value (adapter_config.json, MLX's config, GGUF keys, a pipeline's
        /// model_index.json) that is missing or wrong.
        public static let invalidConfig = Code(.invalidConfig)
        /// A directory without the file that makes it what it was given as.
        public static let missingFile = Code(.missingFile)
        /// A tensor (or part of a module) the format needs is not there.
        public static let missingTensor = Code(.missingTensor)
        /// A tensor that does not belong to the adapter, or appears twice.
        public static let unexpectedTensor = Code(.unexpectedTensor)
        /// Shapes that do not fit each other, the config or the base.
        public static let shapeMismatch = Code(.shapeMismatch)
        /// Valid for its tool, but a dtype, variant or form tlora does not read, or that the
        /// target format cannot hold.
        public static let unsupported = Code(.unsupported)
        /// NaN or infinite values.
        public static let nonFiniteValues = Code(.nonFiniteValues)
        /// The file does not record something tlora needs: give it with an option (`--alpha`,
        /// `--base`, `--base-config`, `--heads`).
        public static let needsOption = Code(.needsOption)
        /// Names that match nothing (or too much) in the base, the architecture's table or the
        /// target format.
        public static let unmatchedNames = Code(.unmatchedNames)
        /// The adapter read breaks a structural rule (`ModelError`'s).
        public static let invalidAdapter = Code(.invalidAdapter)

        public var description: String { "\(base)" }
    }

    public let code: Code
    public let path: String
    public let problem: String

    public init(_ code: Code, _ path: String, _ problem: String) {
        self.code = code
        self.path = path
        self.problem = problem
    }

    /// An error of kind `.general`.
    public init(_ path: String, _ problem: String) { self.init(.general, path, problem) }

    public var description: String { "\(path): \(problem)" }
}
