#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `errno` of a failed system call.
package struct Errno: Error, Equatable, Sendable {
    package let rawValue: Int32

    package init(rawValue: Int32) { self.rawValue = rawValue }

    /// The full disk and the exhausted quota, which writers report as `IOError.noSpace`.
    package var isNoSpace: Bool { rawValue == ENOSPC || rawValue == EDQUOT }
}

/// Runs a system call that returns -1 and sets `errno` on failure: its value, or the error. With
/// `retryOnInterrupt` (the default) a call a signal interrupted (EINTR) is simply made again, so no
/// call site writes that loop itself (swift-system's `valueOrErrno(retryOnInterrupt:)`).
@inline(__always)
package func valueOrErrno<I: FixedWidthInteger>(retryOnInterrupt: Bool = true, _ call: () -> I) -> Result<I, Errno> {
    while true {
        let value = call()
        if value != -1 { return .success(value) }
        let e = errno
        if retryOnInterrupt && e == EINTR { continue }
        return .failure(Errno(rawValue: e))
    }
}

extension IOError {
    /// A path that could not be opened (or examined): `notFound` when it does not exist.
    package static func opening(_ path: String, _ error: Errno) -> IOError {
        error.rawValue == ENOENT ? .notFound(path: path) : .cannotOpen(path: path, errno: error.rawValue)
    }

    /// A write (or the fsync that completes it) that failed: `noSpace` for a full disk or quota.
    package static func writing(_ path: String, _ error: Errno) -> IOError {
        error.isNoSpace ? .noSpace(path: path) : .cannotWrite(path: path, errno: error.rawValue)
    }
}
