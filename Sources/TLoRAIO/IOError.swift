#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure of the operating system to open, read, write or rename a file, or an output tlora
/// refuses to write.
///
/// A struct over a private enum (as swift-nio's errors are), so kinds can be added without breaking
/// a caller's `switch`: match on `code` (or compare with `==`), read the one-line `description`,
/// which starts with the path at fault. The constructors keep the names of the enum cases this
/// type had before, so `throw IOError.notFound(path: p)` reads as it did.
public struct IOError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case notFound, cannotOpen, cannotRead, cannotWrite, noSpace, outputExists, cannotCreateDirectory, cannotRename
            case notAFile, tooLarge, notOurs, outputIsInput, outputInsideInput, outputContainsInput, badOutputPath
            case notWritable, notEnoughSpace
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        public static let notFound = Code(.notFound)
        public static let cannotOpen = Code(.cannotOpen)
        public static let cannotRead = Code(.cannotRead)
        public static let cannotWrite = Code(.cannotWrite)
        /// The disk or the quota is full.
        public static let noSpace = Code(.noSpace)
        /// The output exists and `--force` was not given.
        public static let outputExists = Code(.outputExists)
        public static let cannotCreateDirectory = Code(.cannotCreateDirectory)
        public static let cannotRename = Code(.cannotRename)
        public static let notAFile = Code(.notAFile)
        public static let tooLarge = Code(.tooLarge)
        /// `--force` met something tlora did not write.
        public static let notOurs = Code(.notOurs)
        public static let outputIsInput = Code(.outputIsInput)
        public static let outputInsideInput = Code(.outputInsideInput)
        public static let outputContainsInput = Code(.outputContainsInput)
        /// The output's folder is missing or not a directory, or the name cannot be an output.
        public static let badOutputPath = Code(.badOutputPath)
        public static let notWritable = Code(.notWritable)
        /// The free space checked before the work is less than the output needs.
        public static let notEnoughSpace = Code(.notEnoughSpace)

        public var description: String { "\(base)" }
    }

    /// What went wrong.
    public let code: Code
    /// The path at fault (the destination, for a rename).
    public let path: String
    /// The system call's `errno`, when one failed.
    public let errno: Int32?
    public let description: String

    private init(_ code: Code, _ path: String, errno: Int32? = nil, _ problem: String) {
        self.code = code
        self.path = path
        self.errno = errno
        self.description = "\(path): \(problem)"
    }

    public static func notFound(path: String) -> IOError { IOError(.notFound, path, "no such file or directory") }
    public static func cannotOpen(path: String, errno e: Int32) -> IOError { IOError(.cannotOpen, path, errno: e, "cannot open: \(reason(e))") }
    public static func cannotRead(path: String, errno e: Int32) -> IOError { IOError(.cannotRead, path, errno: e, "read failed: \(reason(e))") }
    public static func cannotWrite(path: String, errno e: Int32) -> IOError { IOError(.cannotWrite, path, errno: e, "write failed: \(reason(e))") }
    public static func noSpace(path: String) -> IOError { IOError(.noSpace, path, "no space left on device; nothing was written") }
    public static func outputExists(path: String) -> IOError { IOError(.outputExists, path, "already exists; pass --force to replace it") }
    public static func cannotCreateDirectory(path: String, errno e: Int32) -> IOError {
        IOError(.cannotCreateDirectory, path, errno: e, "cannot create directory: \(reason(e))")
    }
    public static func cannotRename(from: String, to: String, errno e: Int32) -> IOError {
        IOError(.cannotRename, to, errno: e, "cannot move \(from) into place: \(reason(e))")
    }
    public static func notAFile(path: String) -> IOError { IOError(.notAFile, path, "not a regular file") }
    public static func tooLarge(path: String, size: Int) -> IOError { IOError(.tooLarge, path, "\(size) bytes is larger than this reader accepts") }
    /// `--force` met something tlora did not write (`found` says what, when known).
    public static func notOurs(path: String, expected: String, found: String?) -> IOError {
        IOError(.notOurs, path, "exists and is not \(expected)" + (found.map { " (\($0))" } ?? "")
            + "; --force replaces only tlora's own outputs: remove it yourself or choose another output")
    }
    public static func outputIsInput(path: String, input: String) -> IOError {
        IOError(.outputIsInput, path, "this is the input \(input); an output never replaces an input")
    }
    public static func outputInsideInput(path: String, input: String) -> IOError {
        IOError(.outputInsideInput, path, "lies inside the input \(input); write the output somewhere else")
    }
    public static func outputContainsInput(path: String, input: String) -> IOError {
        IOError(.outputContainsInput, path, "contains the input \(input); an output never replaces what holds an input")
    }
    public static func badOutputPath(path: String, reason: String) -> IOError { IOError(.badOutputPath, path, "cannot write the output here: \(reason)") }
    public static func notWritable(path: String, folder: String, errno e: Int32) -> IOError {
        IOError(.notWritable, path, errno: e, "cannot create files in \(folder): \(reason(e))")
    }
    public static func notEnoughSpace(path: String, needed: Int, free: Int) -> IOError {
        IOError(.notEnoughSpace, path, "not enough disk space: the output needs \(needed) bytes, \(free) are free")
    }

    static func reason(_ code: Int32) -> String {
        guard let s = strerror(code) else { return "errno \(code)" }
        return String(cString: s)
    }
}
