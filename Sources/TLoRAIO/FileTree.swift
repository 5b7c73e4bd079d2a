#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file opened read-only for in-kernel copies (`AtomicFileWriter.copy(from:…)`); closed with the
/// last reference (a class, so closures that copy from it keep it open).
package final class ReadOnlyDescriptor: Sendable {
    package let rawValue: Int32

    /// Nil when the file cannot be opened (callers then read through their mapping).
    package init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        rawValue = fd
    }

    deinit { close(rawValue) }
}

/// Bytes available to an unprivileged writer on the file system that holds `path`'s parent
/// directory; nil when the file system does not say.
package func freeBytes(forOutput path: String) -> Int? {
    var st = statvfs()
    guard statvfs(parentDirectory(path), &st) == 0 else { return nil }
    let (free, overflow) = Int(st.f_bavail).multipliedReportingOverflow(by: Int(st.f_frsize))
    return overflow ? Int.max : free
}

/// Copies a regular file to a new path atomically (`AtomicFileWriter`; the destination must not exist).
package func copyFile(_ source: String, to destination: String) throws {
    let mapped = try MappedFile(path: source)
    let f = try AtomicFileWriter(destination: destination, overwrite: false)
    // Inside the kernel when it can (copy_file_range: no trip through user memory; a reflink on
    // file systems that share extents), through the mapping otherwise.
    if let fd = ReadOnlyDescriptor(path: source) {
        try f.copy(from: fd.rawValue, offset: 0, count: mapped.bytes.count, fallback: mapped.bytes)
    } else {
        try f.write(mapped.bytes)
    }
    try f.commit()
}

/// Creates one directory (its parent must exist).
package func createDirectory(_ path: String) throws {
    guard mkdir(path, 0o755) == 0 else { throw IOError.cannotCreateDirectory(path: path, errno: errno) }
}

/// Copies a file or a directory tree to a new path; anything that is neither (a socket, a device)
/// is skipped. Symbolic links are followed (a Hugging Face cache snapshot is links to blobs), so a
/// link back to a directory being copied is refused (ELOOP) rather than copied without end.
package func copyTree(_ source: String, to destination: String) throws {
    try copyTree(source, to: destination, within: [])
}

private func copyTree(_ source: String, to destination: String, within ancestors: Set<FileIdentity>) throws {
    switch pathKind(source) {
    case .file: try copyFile(source, to: destination)
    case .directory:
        guard let id = FileIdentity(following: source) else { throw IOError.cannotOpen(path: source, errno: errno) }
        guard !ancestors.contains(id) else { throw IOError.cannotOpen(path: source, errno: ELOOP) }
        guard mkdir(destination, 0o755) == 0 else { throw IOError.cannotCreateDirectory(path: destination, errno: errno) }
        let within = ancestors.union([id])
        for name in try directoryEntries(source) {
            try copyTree(joinPath(source, name), to: joinPath(destination, name), within: within)
        }
    default: break
    }
}
