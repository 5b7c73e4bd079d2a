#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What an output is, and how tlora recognizes one that it wrote: `--force` replaces only those.
///
/// A file output is recognized by its content (a `.tlora` file by its magic, a GGUF adapter by its
/// header); a directory output by the marker file `.tlora-output` that `AtomicDirectoryWriter`
/// puts in every directory it builds, which lists every file written — a directory that holds
/// anything else (the user's files, an input) is never replaced.
public struct OutputKind: Sendable {
    public enum Shape: Sendable { case file, directory }

    public let shape: Shape
    /// Words for messages: "a .tlora file", "a GGUF adapter", "a directory".
    public let noun: String
    private let recognizes: @Sendable (String) -> Bool

    public init(file noun: String, recognizes: @escaping @Sendable (String) -> Bool) {
        self.shape = .file
        self.noun = noun
        self.recognizes = recognizes
    }

    /// A file whose first bytes are `magic`.
    public static func file(_ noun: String, magic: [UInt8]) -> OutputKind {
        OutputKind(file: noun) { path in (try? readFileBytes(path: path, count: magic.count)) == magic }
    }

    /// Any regular file: only for files inside a temporary directory (never replaced anyway).
    public static let anyFile = OutputKind(file: "a file") { _ in true }

    /// A directory built by `AtomicDirectoryWriter`.
    public static let directory = OutputKind(directoryNoun: "a directory")

    private init(directoryNoun: String) {
        self.shape = .directory
        self.noun = directoryNoun
        self.recognizes = { _ in false }
    }

    /// The marker every directory output holds (a JSON object whose `files` lists what was written).
    public static let markerName = ".tlora-output"

    /// Throws unless the existing `path` is an output of this kind that tlora wrote, whose
    /// replacement loses nothing else.
    public func checkReplaceable(_ path: String) throws {
        guard let st = pathStatus(path) else { return }
        switch (shape, st.st_mode & S_IFMT) {
        case (.file, S_IFREG):
            guard recognizes(path) else { throw IOError.notOurs(path: path, expected: noun, found: nil) }
        case (.directory, S_IFDIR):
            try Self.checkOwnedDirectory(path)
        case (_, S_IFLNK):
            throw IOError.notOurs(path: path, expected: noun, found: "a symbolic link")
        case (.file, S_IFDIR):
            throw IOError.notOurs(path: path, expected: noun, found: "a directory")
        case (.directory, S_IFREG):
            throw IOError.notOurs(path: path, expected: noun, found: "a file")
        default:
            throw IOError.notOurs(path: path, expected: noun, found: "a special file")
        }
    }

    /// Whether `path` holds nothing (an empty directory is as good as a missing one).
    static func isEmptyDirectory(_ path: String) -> Bool {
        guard let st = pathStatus(path), (st.st_mode & S_IFMT) == S_IFDIR else { return false }
        return ((try? directoryEntries(path)) ?? ["?"]).isEmpty
    }

    /// A directory is tlora's when its marker lists every file and directory in it.
    static func checkOwnedDirectory(_ path: String) throws {
        if isEmptyDirectory(path) { return }
        let marker = joinPath(path, markerName)
        guard let st = pathStatus(marker), (st.st_mode & S_IFMT) == S_IFREG,
              let json = try? JSONParser.parse(try readWholeFile(path: marker, limit: 16 << 20)),
              let listed = json["files"]?.arrayValue?.compactMap(\.stringValue) else {
            throw IOError.notOurs(path: path, expected: "a directory tlora wrote", found: "no \(markerName) marker")
        }
        var allowed = Set(listed)
        for file in listed {
            // Each listed file implies its folders.
            var parts = file.split(separator: "/").dropLast()
            while !parts.isEmpty {
                allowed.insert(parts.joined(separator: "/"))
                parts = parts.dropLast()
            }
        }
        allowed.insert(markerName)
        let foreign = relativeEntries(path).filter { !allowed.contains($0) }
        if !foreign.isEmpty {
            let shown = foreign.prefix(3).joined(separator: ", ") + (foreign.count > 3 ? ", … (\(foreign.count) in all)" : "")
            throw IOError.notOurs(path: path, expected: "a directory tlora wrote", found: "files tlora did not write: \(shown)")
        }
    }

    /// Every file and directory below `path`, relative to it, without following links.
    static func relativeEntries(_ path: String, prefix: String = "") -> [String] {
        var out: [String] = []
        for name in (try? directoryEntries(path)) ?? [] {
            let relative = prefix.isEmpty ? name : prefix + "/" + name
            out.append(relative)
            let full = joinPath(path, name)
            if let st = pathStatus(full), (st.st_mode & S_IFMT) == S_IFDIR {
                out += relativeEntries(full, prefix: relative)
            }
        }
        return out
    }

    /// The marker's bytes for a directory whose files (relative paths) are `files`.
    static func marker(files: [String]) -> [UInt8] {
        var o = JSONObject()
        o["written_by"] = JSONValue("tlora")
        o["note"] = JSONValue("tlora --force replaces this directory only while it holds nothing but these files")
        o["files"] = JSONValue(files.filter { $0 != markerName })
        return JSONWriter.bytes(.object(o), indent: 2) + [0x0A]
    }
}

/// `lstat` of a path (links are not followed); nil when nothing is there.
func pathStatus(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
}
