#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One output a command is about to write, checked before any work is done (docs/CLI.md, "Outputs"):
///
/// - the output is not an input, does not lie inside an input, and does not contain one (real paths:
///   links, `..` and bind mounts resolved; identity by device and inode);
/// - an existing output is replaced only with `replace` (`--force`) and only when tlora wrote it
///   (`OutputKind.checkReplaceable`); an empty directory counts as missing;
/// - the parent directory exists and a file can be created in it;
/// - the file system has room, when the size is known;
/// - stale temporaries that killed runs left in the output's folder are removed
///   (`StaleTemporaries`).
///
/// The writers (`AtomicFileWriter`, `AtomicDirectoryWriter`) repeat the existence and ownership
/// checks when they move the result into place, so an output that appears meanwhile is not lost.
public struct OutputPlan: Sendable {
    public let path: String
    public let kind: OutputKind
    public let replace: Bool
    /// Every path the command reads (missing ones are ignored here: their readers report them).
    public let inputs: [String]
    /// Bytes the output will take, when known before the work.
    public let expectedBytes: Int?

    public init(path: String, kind: OutputKind, replace: Bool, inputs: [String], expectedBytes: Int? = nil) {
        self.path = path
        self.kind = kind
        self.replace = replace
        self.inputs = inputs
        self.expectedBytes = expectedBytes
    }

    /// Runs every check; throws the first problem as an `IOError` naming the output.
    /// - Parameter writing: false for a dry run, which changes nothing on disk: no stale
    ///   temporaries are removed and no probe file is created (`access(2)` tests the folder).
    public func check(writing: Bool = true) throws {
        guard !path.isEmpty else { throw IOError.badOutputPath(path: path, reason: "empty path") }
        let parent = try existingParent()
        if writing { StaleTemporaries.removeDead(in: parent) }
        try checkInputs(parent: parent)
        try checkExisting()
        if writing {
            try checkWritable(parent: parent)
        } else if access(parent, W_OK | X_OK) != 0 {
            throw IOError.notWritable(path: path, folder: parent, errno: errno)
        }
        if let needed = expectedBytes { try checkFreeSpace(parent: parent, needed: needed) }
    }

    /// The output's folder, which must exist and be a directory.
    private func existingParent() throws -> String {
        let name = baseName(path)
        if name == "." || name == ".." || name == "/" {
            throw IOError.badOutputPath(path: path, reason: "name the output itself, not \(name)")
        }
        // `out/` means a directory (as for cp and mv); a file output is not written as `out`.
        if kind.shape == .file, path.hasSuffix("/") {
            throw IOError.badOutputPath(path: path, reason: "the output is a file, and a name ending in / is a directory")
        }
        let parent = parentDirectory(path)
        guard let st = statFollowing(parent) else {
            throw IOError.badOutputPath(path: path, reason: "the folder \(parent) does not exist")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw IOError.badOutputPath(path: path, reason: "\(parent) is not a directory")
        }
        return parent
    }

    private func checkInputs(parent: String) throws {
        let output = FileIdentity(following: path)
        // The output's folder and all folders above it: an input among them would hold the output.
        let outputAncestors = FileIdentity.ancestors(of: parent)
        for input in inputs where !input.isEmpty {
            guard let id = FileIdentity(following: input) else { continue }
            if let output, output == id || FileIdentity(at: path) == id {
                throw IOError.outputIsInput(path: path, input: input)
            }
            if outputAncestors.contains(id) { throw IOError.outputInsideInput(path: path, input: input) }
            if let output, FileIdentity.ancestors(of: parentDirectory(input)).contains(output) {
                throw IOError.outputContainsInput(path: path, input: input)
            }
        }
    }

    private func checkExisting() throws {
        guard pathStatus(path) != nil else { return }
        if kind.shape == .directory, OutputKind.isEmptyDirectory(path) { return }
        guard replace else { throw IOError.outputExists(path: path) }
        try kind.checkReplaceable(path)
    }

    /// Creates (and removes) a probe file where the temporary will go: the only honest test of
    /// permissions, read-only mounts and ACLs.
    private func checkWritable(parent: String) throws {
        let probe = joinPath(parent, ".\(baseName(path)).tlora-tmp-\(getpid())-probe")
        // Registered like any temporary: SIGINT between open and unlink must not leave it behind.
        LiveTemporaries.register(probe)
        defer { LiveTemporaries.unregister(probe) }
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = errno
            if e == EEXIST { return }  // left by a killed run of this pid number; the writer picks other names
            throw IOError.notWritable(path: path, folder: parent, errno: e)
        }
        close(fd)
        unlink(probe)
    }

    private func checkFreeSpace(parent: String, needed: Int) throws {
        guard let free = freeBytes(forOutput: path) else { return }
        // Room for the file system's own bookkeeping beyond the data.
        if free < needed + (16 << 20) { throw IOError.notEnoughSpace(path: path, needed: needed, free: free) }
    }
}

/// A file's identity: device and inode (the same file through links, `..` or bind mounts).
struct FileIdentity: Hashable {
    let device: UInt64
    let inode: UInt64

    init?(following path: String) {
        guard let st = statFollowing(path) else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }

    /// The entry itself (a link is not followed).
    init?(at path: String) {
        guard let st = pathStatus(path) else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }

    /// `directory` and every directory above it, up to the root (through its real path).
    static func ancestors(of directory: String) -> Set<FileIdentity> {
        guard var current = realPath(directory) else { return [] }
        var out: Set<FileIdentity> = []
        while true {
            if let id = FileIdentity(following: current) { out.insert(id) }
            if current == "/" { break }
            current = parentDirectory(current)
        }
        return out
    }
}

/// `stat` following links; nil when the path does not resolve.
func statFollowing(_ path: String) -> stat? {
    var st = stat()
    return stat(path, &st) == 0 ? st : nil
}

/// The absolute path with every link and `.`/`..` resolved.
func realPath(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
}
