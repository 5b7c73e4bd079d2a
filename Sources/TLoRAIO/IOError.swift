#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure of the operating system to open, read, write or rename a file.
public enum IOError: Error, CustomStringConvertible, Equatable, Sendable {
    case notFound(path: String)
    case cannotOpen(path: String, errno: Int32)
    case cannotRead(path: String, errno: Int32)
    case cannotWrite(path: String, errno: Int32)
    case noSpace(path: String)
    case outputExists(path: String)
    case cannotCreateDirectory(path: String, errno: Int32)
    case cannotRename(from: String, to: String, errno: Int32)
    case notAFile(path: String)
    case tooLarge(path: String, size: Int)
    /// `--force` met something tlora did not write (`found` says what, when known).
    case notOurs(path: String, expected: String, found: String?)
    case outputIsInput(path: String, input: String)
    case outputInsideInput(path: String, input: String)
    case outputContainsInput(path: String, input: String)
    case badOutputPath(path: String, reason: String)
    case notWritable(path: String, folder: String, errno: Int32)
    case notEnoughSpace(path: String, needed: Int, free: Int)

    public var description: String {
        switch self {
        case .notFound(let path): return "\(path): no such file or directory"
        case .cannotOpen(let path, let e): return "\(path): cannot open: \(Self.reason(e))"
        case .cannotRead(let path, let e): return "\(path): read failed: \(Self.reason(e))"
        case .cannotWrite(let path, let e): return "\(path): write failed: \(Self.reason(e))"
        case .noSpace(let path): return "\(path): no space left on device; nothing was written"
        case .outputExists(let path): return "\(path): already exists; pass --force to replace it"
        case .cannotCreateDirectory(let path, let e): return "\(path): cannot create directory: \(Self.reason(e))"
        case .cannotRename(let from, let to, let e): return "\(to): cannot move \(from) into place: \(Self.reason(e))"
        case .notAFile(let path): return "\(path): not a regular file"
        case .tooLarge(let path, let size): return "\(path): \(size) bytes is larger than this reader accepts"
        case .notOurs(let path, let expected, let found):
            return "\(path): exists and is not \(expected)" + (found.map { " (\($0))" } ?? "")
                + "; --force replaces only tlora's own outputs: remove it yourself or choose another output"
        case .outputIsInput(let path, let input):
            return "\(path): this is the input \(input); an output never replaces an input"
        case .outputInsideInput(let path, let input):
            return "\(path): lies inside the input \(input); write the output somewhere else"
        case .outputContainsInput(let path, let input):
            return "\(path): contains the input \(input); an output never replaces what holds an input"
        case .badOutputPath(let path, let reason): return "\(path): cannot write the output here: \(reason)"
        case .notWritable(let path, let folder, let e): return "\(path): cannot create files in \(folder): \(Self.reason(e))"
        case .notEnoughSpace(let path, let needed, let free):
            return "\(path): not enough disk space: the output needs \(needed) bytes, \(free) are free"
        }
    }

    static func reason(_ code: Int32) -> String {
        guard let s = strerror(code) else { return "errno \(code)" }
        return String(cString: s)
    }
}
