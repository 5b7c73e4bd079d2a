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
        }
    }

    static func reason(_ code: Int32) -> String {
        guard let s = strerror(code) else { return "errno \(code)" }
        return String(cString: s)
    }
}
