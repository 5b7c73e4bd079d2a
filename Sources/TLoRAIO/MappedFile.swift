#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory (or read into memory when it cannot be mapped).
///
/// Readers validate every offset against `bytes.count` before touching the mapping, so a short file
/// is an error, never a SIGBUS. The mapping lives as long as this object.
public final class MappedFile: @unchecked Sendable {  // immutable: a read-only mapping, unmapped only in deinit
    public let path: String
    public let bytes: UnsafeRawBufferPointer
    private let mapped: Bool

    public init(path: String) throws {
        self.path = path
        let fd = try valueOrErrno { open(path, O_RDONLY | O_CLOEXEC) }.mapError { IOError.opening(path, $0) }.get()
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw IOError.cannotRead(path: path, errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw IOError.notAFile(path: path) }
        let size = Int(st.st_size)
        if size == 0 {
            self.bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            self.mapped = false
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        if let p, p != MAP_FAILED {
            self.bytes = UnsafeRawBufferPointer(start: p, count: size)
            self.mapped = true
        } else {
            // Filesystems without mmap support: fall back to reading.
            let buf = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
            var done = 0
            while done < size {
                let r = valueOrErrno { pread(fd, buf + done, size - done, off_t(done)) }
                guard case .success(let n) = r, n > 0 else {
                    buf.deallocate()
                    if case .failure(let e) = r { throw IOError.cannotRead(path: path, errno: e.rawValue) }
                    throw IOError.cannotRead(path: path, errno: EIO)  // the file shrank
                }
                done += n
            }
            self.bytes = UnsafeRawBufferPointer(start: buf, count: size)
            self.mapped = false
        }
    }

    /// An in-memory copy of `bytes` presented like a file (fuzzing and tests parse without disk I/O).
    public init(copying source: UnsafeRawBufferPointer, path: String) {
        self.path = path
        self.mapped = false
        if source.isEmpty {
            self.bytes = UnsafeRawBufferPointer(start: nil, count: 0)
        } else {
            let buf = UnsafeMutableRawPointer.allocate(byteCount: source.count, alignment: 64)
            buf.copyMemory(from: source.baseAddress!, byteCount: source.count)  // safe: non-empty
            self.bytes = UnsafeRawBufferPointer(start: buf, count: source.count)
        }
    }

    /// Tells the kernel the mapping will be read front to back (bigger read-ahead).
    public func adviseSequential() {
        guard mapped, let base = bytes.baseAddress else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base), bytes.count, MADV_SEQUENTIAL)
    }

    /// Drops the pages of `range` from this process's memory (they are re-read from disk if touched
    /// again). Streaming readers call it after each tensor so resident memory stays near one tensor.
    public func release(_ range: Range<Int>) {
        guard mapped, let base = bytes.baseAddress, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let end = min(bytes.count, range.upperBound)
        // Only whole pages that lie inside the range, so a neighbour still in use is not dropped.
        let firstFull = (range.lowerBound + page - 1) / page * page
        let lastFull = end / page * page
        guard lastFull > firstFull else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + firstFull), lastFull - firstFull, MADV_DONTNEED)
    }

    deinit {
        guard let base = bytes.baseAddress else { return }
        if mapped {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }
}

/// Reads the first `count` bytes of a file at `offset` (fewer at EOF) without mapping it.
package func readFileBytes(path: String, offset: Int = 0, count: Int) throws -> [UInt8] {
    let fd = try valueOrErrno { open(path, O_RDONLY | O_CLOEXEC) }.mapError { IOError.opening(path, $0) }.get()
    defer { close(fd) }
    var out = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
        let r = try valueOrErrno {
            out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }  // safe: count > done ≥ 0
        }.mapError { IOError.cannotRead(path: path, errno: $0.rawValue) }.get()
        if r == 0 { break }
        done += r
    }
    out.removeSubrange(done...)
    return out
}

/// Reads a whole (small) file, refusing files above `limit` bytes.
package func readWholeFile(path: String, limit: Int = 64 << 20) throws -> [UInt8] {
    let size = try fileSize(path: path)
    guard size <= limit else { throw IOError.tooLarge(path: path, size: size) }
    return try readFileBytes(path: path, count: size)
}

/// The size of a regular file.
package func fileSize(path: String) throws -> Int {
    var st = stat()
    _ = try valueOrErrno { stat(path, &st) }.mapError { IOError.opening(path, $0) }.get()
    guard (st.st_mode & S_IFMT) == S_IFREG else { throw IOError.notAFile(path: path) }
    return Int(st.st_size)
}

/// What is at a path.
package enum PathKind: Sendable { case missing, file, directory, other }

package func pathKind(_ path: String) -> PathKind {
    var st = stat()
    guard stat(path, &st) == 0 else { return .missing }
    switch st.st_mode & S_IFMT {
    case S_IFREG: return .file
    case S_IFDIR: return .directory
    default: return .other
    }
}

/// The entries of a directory (names only, sorted, without "." and "..").
package func directoryEntries(_ path: String) throws -> [String] {
    guard let dir = opendir(path) else { throw IOError.opening(path, Errno(rawValue: errno)) }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

/// Joins path components with "/".
package func joinPath(_ base: String, _ name: String) -> String {
    base.hasSuffix("/") ? base + name : base + "/" + name
}

/// The directory part of a path ("." when there is none).
package func parentDirectory(_ path: String) -> String {
    var p = path
    while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
    guard let slash = p.lastIndex(of: "/") else { return "." }
    let dir = String(p[..<slash])
    return dir.isEmpty ? "/" : dir
}

/// The last path component.
package func baseName(_ path: String) -> String {
    var p = path
    while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
    guard let slash = p.lastIndex(of: "/") else { return p }
    return String(p[p.index(after: slash)...])
}
