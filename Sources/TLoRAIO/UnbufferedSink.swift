import CTLoRASystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of a large output written past the page cache (Linux `O_DIRECT`), for writers of
/// gigabytes such as the merge.
///
/// Why: on the virtual machines this project measures on, filling fresh page-cache memory is the
/// dominant cost of writing a checkpoint — 5.1 GB through buffered `write` took 5–12 s of system time
/// (`cp` alike), the same bytes written `O_DIRECT` 0.6 s and 2.6–3.9 s of wall time
/// (docs/BENCHMARKS.md, "Diffusion merge"). The bytes are gathered in an aligned buffer and handed
/// to the disk in whole aligned chunks; the tail is written padded to the alignment and the file is
/// then truncated to its length. Durability is unchanged: the owner still fsyncs before it renames.
/// Where the filesystem refuses `O_DIRECT` (tmpfs, some network filesystems) `open` returns nil and
/// the owner writes through the page cache as before.
final class UnbufferedSink {
    /// Offsets, lengths and the buffer's address are multiples of this (the largest logical block
    /// size of common devices; every smaller one divides it).
    static let alignment = 4096
    /// Bytes per write call: large enough that the device streams, small enough to stay in cache.
    static let chunk = 8 << 20

    private let fd: Int32
    private let path: String
    private let buffer: UnsafeMutableRawBufferPointer
    private var filled = 0
    /// Bytes already on disk (a multiple of `alignment`).
    private var flushed = 0

    /// Opens `path` (an existing, empty file) a second time, unbuffered; nil where that is refused.
    init?(path: String) {
        let f = path.withCString { tlora_open_unbuffered($0) }
        guard f >= 0 else { return nil }
        var memory: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&memory, Self.alignment, Self.chunk) == 0, let memory else {
            close(f)
            return nil
        }
        self.fd = f
        self.path = path
        self.buffer = UnsafeMutableRawBufferPointer(start: memory, count: Self.chunk)
    }

    deinit {
        close(fd)
        free(buffer.baseAddress)
    }

    /// Appends bytes; whole chunks go to the disk as they fill.
    func append(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = min(bytes.count - done, Self.chunk - filled)
            // Safe: both ranges are in bounds (n ≤ the room left and the bytes left).
            (buffer.baseAddress! + filled).copyMemory(from: bytes.baseAddress! + done, byteCount: n)
            filled += n
            done += n
            if filled == Self.chunk { try flush(count: Self.chunk) }
        }
    }

    /// Appends `count` bytes of another file from `offset`, read straight into the buffer (no
    /// mapping of the source's pages into this process); `fallback` holds the same bytes, for a
    /// source that cannot be read so.
    func append(from source: Int32, offset: Int, count: Int, fallback: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < count {
            let want = min(count - done, Self.chunk - filled)
            let read = valueOrErrno { pread(source, buffer.baseAddress! + filled, want, off_t(offset + done)) }
            guard case .success(let n) = read, n > 0 else {
                return try append(UnsafeRawBufferPointer(rebasing: fallback[done..<count]))
            }
            filled += n
            done += n
            if filled == Self.chunk { try flush(count: Self.chunk) }
        }
    }

    /// Writes what is left, padded to the alignment, and cuts the file back to `length` bytes.
    func finish(length: Int) throws {
        if filled > 0 {
            let padded = (filled + Self.alignment - 1) / Self.alignment * Self.alignment
            (buffer.baseAddress! + filled).initializeMemory(as: UInt8.self, repeating: 0, count: padded - filled)  // safe: padded ≤ chunk
            try flush(count: padded)
        }
        if case .failure(let e) = valueOrErrno({ ftruncate(fd, off_t(length)) }) { throw IOError.writing(path, e) }
    }

    private func flush(count: Int) throws {
        var done = 0
        while done < count {
            switch valueOrErrno({ pwrite(fd, buffer.baseAddress! + done, count - done, off_t(flushed + done)) }) {
            case .success(let n) where n > 0: done += n
            case .success: throw IOError.noSpace(path: path)  // a zero-byte write: the disk is full
            case .failure(let e): throw IOError.writing(path, e)
            }
        }
        flushed += count
        filled = 0
    }
}
