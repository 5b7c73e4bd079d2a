import TLoRAIO

/// Why a `.tlora` file was refused. Every message starts with the file's path.
///
/// A struct over a private enum (as swift-nio's errors are), so kinds can be added without breaking
/// a caller's `switch`: match on `code` (or compare with `==`), read the one-line `description`.
/// The constructors keep the names of the enum cases this type had before.
public struct FormatError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What is wrong with the file.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case notATLoRAFile, truncated, unsupportedVersion, unknownRequiredFeatures, missingRequiredFeature, headerTooLarge
            case fileLengthMismatch, headerChecksumMismatch, invalidHeader, invalidLayout, tensorChecksumMismatch
            case tensorDecodeFailed, nonZeroPadding, invalidAdapter, nonFiniteValues, noSuchTensor, fileSystem
            case bankNeedsMember, noSuchMember
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Bad magic bytes.
        public static let notATLoRAFile = Code(.notATLoRAFile)
        public static let truncated = Code(.truncated)
        /// A major version newer than this reader.
        public static let unsupportedVersion = Code(.unsupportedVersion)
        /// `required_features` lists a feature this reader does not know.
        public static let unknownRequiredFeatures = Code(.unknownRequiredFeatures)
        /// The file uses a form or part whose feature its `required_features` does not list.
        public static let missingRequiredFeature = Code(.missingRequiredFeature)
        public static let headerTooLarge = Code(.headerTooLarge)
        public static let fileLengthMismatch = Code(.fileLengthMismatch)
        public static let headerChecksumMismatch = Code(.headerChecksumMismatch)
        /// The header's JSON breaks the schema.
        public static let invalidHeader = Code(.invalidHeader)
        /// Blobs that overlap, leave the data section or are out of order.
        public static let invalidLayout = Code(.invalidLayout)
        public static let tensorChecksumMismatch = Code(.tensorChecksumMismatch)
        public static let tensorDecodeFailed = Code(.tensorDecodeFailed)
        public static let nonZeroPadding = Code(.nonZeroPadding)
        /// The adapter the header describes breaks a structural rule (`ModelError`'s).
        public static let invalidAdapter = Code(.invalidAdapter)
        public static let nonFiniteValues = Code(.nonFiniteValues)
        public static let noSuchTensor = Code(.noSuchTensor)
        /// The file could not be read (`underlying` says why).
        public static let fileSystem = Code(.fileSystem)
        /// The file is an adapter bank and an adapter was asked for without saying which member.
        public static let bankNeedsMember = Code(.bankNeedsMember)
        /// The bank has no member of the name asked for.
        public static let noSuchMember = Code(.noSuchMember)

        public var description: String { "\(base)" }
    }

    /// What is wrong with the file.
    public let code: Code
    public let path: String
    /// The operating system's error, for `.fileSystem`.
    public let underlying: IOError?
    public let description: String

    private init(_ code: Code, _ path: String, _ problem: String) {
        self.code = code
        self.path = path
        self.underlying = nil
        self.description = "\(path): \(problem)"
    }

    public static func notATLoRAFile(path: String) -> FormatError { FormatError(.notATLoRAFile, path, "not a .tlora file (bad magic bytes)") }
    public static func truncated(path: String, what: String, needed: Int, available: Int) -> FormatError {
        FormatError(.truncated, path, "truncated: \(what) needs \(needed) bytes but only \(available) are there")
    }
    public static func unsupportedVersion(path: String, major: Int, minor: Int, highestSupported: Int) -> FormatError {
        FormatError(.unsupportedVersion, path, "format version \(major).\(minor) is newer than this tlora reads (up to \(highestSupported).x); upgrade tlora")
    }
    public static func unknownRequiredFeatures(path: String, features: [String]) -> FormatError {
        FormatError(.unknownRequiredFeatures, path, "requires features this tlora does not know: \(features.joined(separator: ", ")); upgrade tlora")
    }
    /// `subject` (a module, or `projections`) `uses` something that needs `feature`, which the file does not list.
    public static func missingRequiredFeature(path: String, subject: String, uses: String, feature: String) -> FormatError {
        FormatError(.missingRequiredFeature, path, "\(subject): \(uses) but the file does not list the required feature \(feature)")
    }
    public static func headerTooLarge(path: String, length: Int, limit: Int) -> FormatError {
        FormatError(.headerTooLarge, path, "header length \(length) exceeds the limit of \(limit) bytes")
    }
    public static func fileLengthMismatch(path: String, declared: Int, actual: Int) -> FormatError {
        FormatError(.fileLengthMismatch, path, "file is \(actual) bytes but its preamble says \(declared) (truncated or extended)")
    }
    public static func headerChecksumMismatch(path: String) -> FormatError {
        FormatError(.headerChecksumMismatch, path, "header checksum mismatch (the preamble or header is corrupted)")
    }
    public static func invalidHeader(path: String, problem: String) -> FormatError { FormatError(.invalidHeader, path, "invalid header: \(problem)") }
    public static func invalidLayout(path: String, problem: String) -> FormatError { FormatError(.invalidLayout, path, "invalid layout: \(problem)") }
    public static func tensorChecksumMismatch(path: String, tensor: String) -> FormatError {
        FormatError(.tensorChecksumMismatch, path, "tensor \(tensor): checksum mismatch (data corrupted)")
    }
    public static func tensorDecodeFailed(path: String, tensor: String, problem: String) -> FormatError {
        FormatError(.tensorDecodeFailed, path, "tensor \(tensor): cannot decode: \(problem)")
    }
    public static func nonZeroPadding(path: String, offset: Int) -> FormatError {
        FormatError(.nonZeroPadding, path, "padding byte at offset \(offset) is not zero (corrupted)")
    }
    public static func invalidAdapter(path: String, problem: String) -> FormatError { FormatError(.invalidAdapter, path, problem) }
    public static func nonFiniteValues(path: String, tensor: String) -> FormatError {
        FormatError(.nonFiniteValues, path, "tensor \(tensor) holds NaN or infinite values")
    }
    public static func noSuchTensor(path: String, tensor: String) -> FormatError { FormatError(.noSuchTensor, path, "no tensor named \(tensor)") }

    /// The file is an adapter bank and an adapter was asked for without saying which member.
    public static func bankNeedsMember(path: String, members: [String]) -> FormatError {
        FormatError(.bankNeedsMember, path, "an adapter bank of \(members.count) members (\(list(members))); choose one with --member NAME")
    }
    public static func noSuchMember(path: String, member: String, members: [String]) -> FormatError {
        FormatError(.noSuchMember, path, "the bank has no member \(member) (members: \(list(members)))")
    }

    /// The first few names, for messages about banks of thousands.
    static func list(_ names: [String]) -> String {
        names.prefix(6).joined(separator: ", ") + (names.count > 6 ? ", … (\(names.count) in all)" : "")
    }

    /// The file could not be read; the description is the operating system's error's.
    public static func fileSystem(_ error: IOError) -> FormatError { FormatError(fileSystem: error) }

    private init(fileSystem error: IOError) {
        code = .fileSystem
        path = error.path
        underlying = error
        description = error.description
    }
}
