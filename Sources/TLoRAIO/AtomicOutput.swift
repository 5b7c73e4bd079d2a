import CTLoRASystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes one output file atomically: the bytes go to a hidden temporary file in the destination's
/// folder, which is fsynced and then moved into place in one step. Until `commit()` nothing exists at
/// the destination; if the process dies or the writer is dropped, the destination is untouched and the
/// temporary file is removed (or, after SIGKILL, left as a hidden `.<name>.tlora-tmp-*` file).
package final class AtomicFileWriter {
    public let destination: String
    public let temporaryPath: String
    private var fd: Int32
    private let overwrite: Bool
    private var committed = false
    public private(set) var bytesWritten = 0

    private let kind: OutputKind
    /// Set when the bytes go past the page cache (`unbuffered`).
    private var sink: UnbufferedSink?

    /// Fails at once if the destination exists and `overwrite` is false, or if it exists and is not
    /// a `kind` of file tlora wrote (`OutputKind.checkReplaceable`), so no work is wasted.
    /// - Parameter unbuffered: write past the page cache where the filesystem allows it
    ///   (`UnbufferedSink`), for outputs of gigabytes that nothing reads back at once.
    public init(destination: String, overwrite: Bool, kind: OutputKind = .anyFile, unbuffered: Bool = false) throws {
        self.destination = destination
        self.overwrite = overwrite
        self.kind = kind
        if pathStatus(destination) != nil {
            guard overwrite else { throw IOError.outputExists(path: destination) }
            try kind.checkReplaceable(destination)
        }
        let dir = parentDirectory(destination)
        var attempt = 0
        while true {
            let candidate = joinPath(dir, StaleTemporaries.name(for: baseName(destination)))
            LiveTemporaries.register(candidate)
            let f = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if f >= 0 {
                StaleTemporaries.lock(f)
                self.fd = f
                self.temporaryPath = candidate
                if unbuffered { sink = UnbufferedSink(path: candidate, bufferedFD: f) }
                break
            }
            let e = errno
            LiveTemporaries.unregister(candidate)
            attempt += 1
            if e != EEXIST || attempt > 16 { throw IOError.cannotOpen(path: destination, errno: e) }
        }
    }

    /// Written bytes not yet handed to the disk: writeback starts every `writebackChunk` bytes so the
    /// final fsync waits for little, and the page cache does not fill with dirty pages.
    private var writebackStart = 0
    static let writebackChunk = 32 << 20

    private func startWritebackIfDue() {
        if bytesWritten - writebackStart >= Self.writebackChunk {
            _ = tlora_start_writeback(fd, Int64(writebackStart), Int64(bytesWritten - writebackStart))
            writebackStart = bytesWritten
        }
    }

    /// Appends `count` bytes of another file from `offset`: copied inside the kernel when possible,
    /// or read straight into the unbuffered sink's buffer.
    public func copy(from source: Int32, offset: Int, count: Int, fallback: UnsafeRawBufferPointer) throws {
        if let sink {
            // The kernel's copy would go through the page cache.
            try sink.append(from: source, offset: offset, count: count, fallback: fallback)
            bytesWritten += count
            return
        }
        var done = 0
        while done < count {
            let n = valueOrErrno { tlora_copy_range(source, Int64(offset + done), fd, Int64(count - done)) }
            if case .success(let copied) = n, copied > 0 {
                done += Int(copied)
                continue
            }
            if case .failure(let e) = n, e.isNoSpace { throw IOError.noSpace(path: destination) }
            // Not supported here (or a short source): write the rest through memory.
            bytesWritten += done
            try write(UnsafeRawBufferPointer(rebasing: fallback[done..<count]))
            return
        }
        bytesWritten += count
        startWritebackIfDue()
    }

    /// The most one `write` call hands the kernel. Linux 6.x sizes the page-cache folios of a
    /// buffered write by the call's length, and the large folios of MiB-sized calls cost far more to
    /// allocate and fill than small ones: writing 2.2 GB in 1 MiB calls took 1.3–5.7 s of system time
    /// on this project's machines, in 256 KiB calls 0.5–0.7 s (docs/BENCHMARKS.md, Merge, "… and the
    /// page cache"). Smaller calls than that only add syscalls.
    package static let largestWriteCall = 256 << 10

    /// Appends bytes (handles short writes and EINTR; a full disk is `IOError.noSpace`).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress else { return }
        if let sink {
            try sink.append(bytes)
            bytesWritten += bytes.count
            return
        }
        var done = 0
        while done < bytes.count {
            let call = min(bytes.count - done, Self.largestWriteCall)
            switch valueOrErrno({ Glibc.write(fd, base + done, call) }) {
            case .success(let n): done += n
            case .failure(let e): throw IOError.writing(destination, e)
            }
        }
        bytesWritten += bytes.count
        startWritebackIfDue()
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Writes zero bytes until the file length is a multiple of `alignment`.
    public func pad(to alignment: Int) throws {
        let rem = bytesWritten % alignment
        if rem != 0 { try write([UInt8](repeating: 0, count: alignment - rem)) }
    }

    /// Flushes to disk and moves the file into place. Without `overwrite`, an output that appeared in
    /// the meantime is not replaced (the move is a hard link, which refuses an existing name).
    public func commit() throws {
        guard !committed else { return }
        if let sink {
            try sink.finish(length: bytesWritten)
            self.sink = nil
        }
        if case .failure(let e) = valueOrErrno({ fsync(fd) }) { throw IOError.writing(destination, e) }
        close(fd)
        fd = -1
        let (temporaryPath, destination, overwrite, kind) = (self.temporaryPath, self.destination, self.overwrite, self.kind)
        try LiveTemporaries.commit(temporaryPath, to: destination) {
            if overwrite {
                // Again at the last moment: whatever appeared meanwhile must be tlora's too.
                try kind.checkReplaceable(destination)
                guard rename(temporaryPath, destination) == 0 else { throw IOError.cannotRename(from: temporaryPath, to: destination, errno: errno) }
            } else if link(temporaryPath, destination) != 0 {
                let e = errno
                if e == EEXIST { throw IOError.outputExists(path: destination) }
                // Filesystems without hard links: check-then-rename is the best left.
                guard pathStatus(destination) == nil, rename(temporaryPath, destination) == 0 else {
                    throw IOError.cannotRename(from: temporaryPath, to: destination, errno: e)
                }
            } else {
                unlink(temporaryPath)
            }
            return true
        }
        committed = true
        syncDirectory(parentDirectory(destination))
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed {
            unlink(temporaryPath)
            LiveTemporaries.unregister(temporaryPath)
        }
    }
}

/// Builds an output directory atomically: files are written into a hidden temporary directory beside
/// the destination, which is renamed into place by `commit()`. With `overwrite`, an existing
/// destination that tlora wrote (its `.tlora-output` marker lists everything in it) is swapped out in
/// one step (Linux `renameat2(RENAME_EXCHANGE)`) and then deleted; any other directory is refused.
/// An empty directory is replaced without `overwrite`: it holds nothing to lose.
package final class AtomicDirectoryWriter {
    public let destination: String
    public let temporaryPath: String
    private let overwrite: Bool
    private var committed = false
    private var lockFD: Int32 = -1

    public init(destination: String, overwrite: Bool) throws {
        self.destination = destination
        self.overwrite = overwrite
        if pathStatus(destination) != nil, !OutputKind.isEmptyDirectory(destination) {
            guard overwrite else { throw IOError.outputExists(path: destination) }
            try OutputKind.directory.checkReplaceable(destination)
        }
        let candidate = joinPath(parentDirectory(destination), StaleTemporaries.name(for: baseName(destination)))
        LiveTemporaries.register(candidate)
        guard mkdir(candidate, 0o755) == 0 else {
            let e = errno
            LiveTemporaries.unregister(candidate)
            throw IOError.cannotCreateDirectory(path: destination, errno: e)
        }
        self.temporaryPath = candidate
        lockFD = open(candidate, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if lockFD >= 0 { StaleTemporaries.lock(lockFD) }
    }

    /// The path inside the temporary directory where a file named `name` is to be written.
    public func path(for name: String) -> String { joinPath(temporaryPath, name) }

    /// Writes the marker, syncs every file, then moves the directory into place.
    public func commit() throws {
        guard !committed else { return }
        let written = OutputKind.relativeEntries(temporaryPath)
        let marker = try AtomicFileWriter(destination: path(for: OutputKind.markerName), overwrite: false)
        try marker.write(OutputKind.marker(files: written))
        try marker.commit()
        for name in (try? directoryEntries(temporaryPath)) ?? [] {
            let f = open(joinPath(temporaryPath, name), O_RDONLY | O_CLOEXEC)
            if f >= 0 {
                let synced = valueOrErrno { fsync(f) }
                close(f)
                if case .failure(let e) = synced { throw IOError.writing(destination, e) }
            }
        }
        syncDirectory(temporaryPath)
        let (temporaryPath, destination, overwrite) = (self.temporaryPath, self.destination, self.overwrite)
        let swapped = try LiveTemporaries.commit(temporaryPath, to: destination) { () throws -> Bool in
            if pathStatus(destination) == nil || OutputKind.isEmptyDirectory(destination) {
                // rename(2) replaces an empty directory, and fails if it filled up meanwhile.
                guard rename(temporaryPath, destination) == 0 else {
                    let e = errno
                    if e == ENOTEMPTY || e == EEXIST { throw IOError.outputExists(path: destination) }
                    throw IOError.cannotRename(from: temporaryPath, to: destination, errno: e)
                }
                return false
            }
            guard overwrite else { throw IOError.outputExists(path: destination) }
            try OutputKind.directory.checkReplaceable(destination)
            guard exchangePaths(temporaryPath, destination) else {
                throw IOError.cannotRename(from: temporaryPath, to: destination, errno: errno)
            }
            return true
        }
        committed = true
        if lockFD >= 0 { close(lockFD) }
        lockFD = -1
        // The temporary path now holds the old output (no longer registered: the new one is in
        // place, and an interruption from here on leaves it to the next run's stale sweep).
        if swapped { removeTree(temporaryPath) }
        syncDirectory(parentDirectory(destination))
    }

    deinit {
        if lockFD >= 0 { close(lockFD) }
        if !committed {
            removeTree(temporaryPath)
            LiveTemporaries.unregister(temporaryPath)
        }
    }
}

/// Atomically swaps two paths (Linux renameat2 with RENAME_EXCHANGE).
private func exchangePaths(_ a: String, _ b: String) -> Bool {
    tlora_exchange_paths(a, b) == 0
}

/// fsync of a directory makes a rename inside it durable.
private func syncDirectory(_ path: String) {
    let f = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if f >= 0 {
        fsync(f)
        close(f)
    }
}

/// Removes a file or a directory tree (best effort; used to clean temporaries). Links are removed,
/// never followed: what they point to is not ours.
package func removeTree(_ path: String) {
    guard let st = pathStatus(path) else { return }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        for name in (try? directoryEntries(path)) ?? [] { removeTree(joinPath(path, name)) }
        rmdir(path)
    } else {
        unlink(path)
    }
}
