#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TLoRAIO

/// A fresh directory under /tmp, removed when the value is released.
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init(_ prefix: String = "tlora-test", root: String = "/tmp") {
        var template = Array("\(root)/\(prefix)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }  // safe: non-empty buffer
        precondition(made != nil, "mkdtemp failed")
        path = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })  // safe: non-empty buffer
    }

    public func file(_ name: String) -> String { path + "/" + name }

    deinit { removeTree(path) }
}

/// Reads and writes whole files in tests.
public enum TestFiles {
    public static func read(_ path: String) -> [UInt8] {
        (try? readWholeFile(path: path, limit: Int.max)) ?? []
    }

    public static func write(_ path: String, _ bytes: [UInt8]) {
        guard let f = fopen(path, "wb") else { preconditionFailure("cannot write \(path)") }
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, bytes.count, f) }
        fclose(f)
    }
}

/// Creates a directory (and its parents); true when it exists afterwards.
@discardableResult
public func makeDirectory(_ path: String) -> Bool {
    if pathKind(path) == .directory { return true }
    let parent = parentDirectory(path)
    if parent != path, pathKind(parent) == .missing { makeDirectory(parent) }
    return mkdir(path, 0o755) == 0 || pathKind(path) == .directory
}

/// XXH64 of every file below `path` (or of the file itself), keyed by path relative to `path`
/// ("" for a file): two trees are byte-identical when their fingerprints are equal.
public func treeFingerprint(_ path: String) -> [String: UInt64] {
    func walk(_ full: String, _ relative: String, into out: inout [String: UInt64]) {
        switch pathKind(full) {
        case .file: out[relative] = XXH64.hash(TestFiles.read(full))
        case .directory:
            out[relative + "/"] = 0
            for name in (try? directoryEntries(full)) ?? [] {
                walk(joinPath(full, name), relative.isEmpty ? name : relative + "/" + name, into: &out)
            }
        default: out[relative] = 1
        }
    }
    var out: [String: UInt64] = [:]
    walk(path, "", into: &out)
    return out
}
