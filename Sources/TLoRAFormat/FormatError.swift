import TLoRAIO

/// Why a `.tlora` file was refused. Every message starts with the file's path.
public enum FormatError: Error, CustomStringConvertible, Equatable, Sendable {
    case notATLoRAFile(path: String)
    case truncated(path: String, what: String, needed: Int, available: Int)
    case unsupportedVersion(path: String, major: Int, minor: Int, highestSupported: Int)
    case unknownRequiredFeatures(path: String, features: [String])
    case headerTooLarge(path: String, length: Int, limit: Int)
    case fileLengthMismatch(path: String, declared: Int, actual: Int)
    case headerChecksumMismatch(path: String)
    case invalidHeader(path: String, problem: String)
    case invalidLayout(path: String, problem: String)
    case tensorChecksumMismatch(path: String, tensor: String)
    case tensorDecodeFailed(path: String, tensor: String, problem: String)
    case nonZeroPadding(path: String, offset: Int)
    case invalidAdapter(path: String, problem: String)
    case nonFiniteValues(path: String, tensor: String)
    case noSuchTensor(path: String, tensor: String)
    /// The file is an adapter bank and an adapter was asked for without saying which member.
    case bankNeedsMember(path: String, members: [String])
    case noSuchMember(path: String, member: String, members: [String])
    case fileSystem(IOError)

    public var description: String {
        switch self {
        case .notATLoRAFile(let p):
            return "\(p): not a .tlora file (bad magic bytes)"
        case .truncated(let p, let what, let needed, let available):
            return "\(p): truncated: \(what) needs \(needed) bytes but only \(available) are there"
        case .unsupportedVersion(let p, let major, let minor, let highest):
            return "\(p): format version \(major).\(minor) is newer than this tlora reads (up to \(highest).x); upgrade tlora"
        case .unknownRequiredFeatures(let p, let features):
            return "\(p): requires features this tlora does not know: \(features.joined(separator: ", ")); upgrade tlora"
        case .headerTooLarge(let p, let length, let limit):
            return "\(p): header length \(length) exceeds the limit of \(limit) bytes"
        case .fileLengthMismatch(let p, let declared, let actual):
            return "\(p): file is \(actual) bytes but its preamble says \(declared) (truncated or extended)"
        case .headerChecksumMismatch(let p):
            return "\(p): header checksum mismatch (the preamble or header is corrupted)"
        case .invalidHeader(let p, let problem):
            return "\(p): invalid header: \(problem)"
        case .invalidLayout(let p, let problem):
            return "\(p): invalid layout: \(problem)"
        case .tensorChecksumMismatch(let p, let t):
            return "\(p): tensor \(t): checksum mismatch (data corrupted)"
        case .tensorDecodeFailed(let p, let t, let problem):
            return "\(p): tensor \(t): cannot decode: \(problem)"
        case .nonZeroPadding(let p, let offset):
            return "\(p): padding byte at offset \(offset) is not zero (corrupted)"
        case .invalidAdapter(let p, let problem):
            return "\(p): \(problem)"
        case .nonFiniteValues(let p, let t):
            return "\(p): tensor \(t) holds NaN or infinite values"
        case .noSuchTensor(let p, let t):
            return "\(p): no tensor named \(t)"
        case .bankNeedsMember(let p, let members):
            return "\(p): an adapter bank of \(members.count) members (\(Self.list(members))); choose one with --member NAME"
        case .noSuchMember(let p, let member, let members):
            return "\(p): the bank has no member \(member) (members: \(Self.list(members)))"
        case .fileSystem(let e):
            return e.description
        }
    }

    /// The first few names, for messages about banks of thousands.
    static func list(_ names: [String]) -> String {
        names.prefix(6).joined(separator: ", ") + (names.count > 6 ? ", … (\(names.count) in all)" : "")
    }
}
