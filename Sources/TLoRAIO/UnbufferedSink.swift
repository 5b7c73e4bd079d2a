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
/// Where the filesystem refuses `O_DIRECT` at `open` (older tmpfs, some network filesystems) there is no
/// sink and the owner writes through the page cache; where it accepts the `open` but refuses a
/// write (`EINVAL`: a device whose blocks are larger than the alignment), the sink writes that chunk
/// and all later ones through the owner's buffered descriptor instead.
package final class UnbufferedSink {
    /// Offsets, lengths and the buffer's address are multiples of this (the largest logical block
    /// size of common devices; every smaller one divides it).
    package static let alignment = 4096
    /// Bytes per write call: large enough that the device streams, small enough to stay in cache.
    package static let chunk = 8 << 20

    private let fd: Int32
    private let bufferedFD: Int32
    private let path: String
    private let chunk: Int
    private let alignment: Int
    private let buffer: UnsafeMutableRawBufferPointer
    private var filled = 0
    /// Bytes already written (a multiple of `alignment` while `isDirect`).
    private var flushed = 0
    /// False once the filesystem refused an unbuffered write: the rest goes through `bufferedFD`.
    package private(set) var isDirect = true

    /// Opens `path` (an existing, empty file, open for writing as `bufferedFD`) a second time,
    /// unbuffered; nil where that is refused. `chunk` is a multiple of `alignment`.
    package init?(path: String, bufferedFD: Int32, chunk: Int = UnbufferedSink.chunk, alignment: Int = UnbufferedSink.alignment) {
        precondition(chunk > 0 && alignment > 0 && chunk % alignment == 0, "chunk must be a multiple of the alignment")
        let f = path.withCString { tlora_open_unbuffered($0) }
        guard f >= 0 else { return nil }
        var memory: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&memory, Self.alignment, chunk) == 0, let memory else {
            close(f)
            return nil
        }
        self.fd = f
        self.bufferedFD = bufferedFD
        self.path = path
        self.chunk = chunk
        self.alignment = alignment
        self.buffer = UnsafeMutableRawBufferPointer(start: memory, count: chunk)
    }

    deinit {
        close(fd)
        free(buffer.baseAddress)
    }

    /// Appends bytes; whole chunks go to the disk as they fill.
    package func append(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = min(bytes.count - done, chunk - filled)
            // Safe: both ranges are in bounds (n ≤ the room left and the bytes left).
            (buffer.baseAddress! + filled).copyMemory(from: bytes.baseAddress! + done, byteCount: n)
            filled += n
            done += n
            if filled == chunk { try flush() }
        }
    }

    /// Appends `count` bytes of another file from `offset`, read straight into the buffer (no
    /// mapping of the source's pages into this process); `fallback` holds the same bytes, for a
    /// source that cannot be read so.
    package func append(from source: Int32, offset: Int, count: Int, fallback: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < count {
            let want = min(count - done, chunk - filled)
            let read = valueOrErrno { pread(source, buffer.baseAddress! + filled, want, off_t(offset + done)) }
            guard case .success(let n) = read, n > 0 else {
                return try append(UnsafeRawBufferPointer(rebasing: fallback[done..<count]))
            }
            filled += n
            done += n
            if filled == chunk { try flush() }
        }
    }

    /// Writes what is left (padded to the alignment when unbuffered) and cuts the file back to
    /// `length` bytes.
    package func finish(length: Int) throws {
        if filled > 0 {
            if isDirect {
                let padded = (filled + alignment - 1) / alignment * alignment
                // Safe: padded ≤ chunk, as chunk is a multiple of the alignment.
                (buffer.baseAddress! + filled).initializeMemory(as: UInt8.self, repeating: 0, count: padded - filled)
                filled = padded
            }
            try flush()
        }
        if case .failure(let e) = valueOrErrno({ ftruncate(bufferedFD, off_t(length)) }) { throw IOError.writing(path, e) }
    }

    /// Writes the buffer's `filled` bytes at `flushed` and empties it.
    private func flush() throws {
        var done = 0
        while done < filled {
            let target = isDirect ? fd : bufferedFD
            switch valueOrErrno({ pwrite(target, buffer.baseAddress! + done, filled - done, off_t(flushed + done)) }) {
            case .success(let n) where n > 0: done += n
            case .success: throw IOError.noSpace(path: path)  // a zero-byte write: the disk is full
            case .failure(let e) where e.rawValue == EINVAL && isDirect && done == 0:
                isDirect = false  // the filesystem took the open but not this write: the page cache it is
            case .failure(let e): throw IOError.writing(path, e)
            }
        }
        flushed += filled
        filled = 0
    }
}
