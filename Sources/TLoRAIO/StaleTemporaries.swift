#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Temporaries are named `.<output>.tlora-tmp-<pid>-<random>` and locked (`flock`) by the process
/// writing them for as long as it lives. A run killed with SIGKILL cannot remove its temporary; the
/// next run that writes into the same folder does: it removes every tlora temporary there that no
/// process holds locked and whose pid is not a live process (docs/CLI.md, "Outputs").
public enum StaleTemporaries {
    static let marker = ".tlora-tmp-"

    /// The temporary name for an output named `name`, written by this process.
    static func name(for name: String) -> String {
        ".\(name)\(marker)\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// The pid recorded in a temporary's name, or nil when `name` is not a tlora temporary.
    static func writerPID(_ name: String) -> pid_t? {
        guard name.hasPrefix("."), let range = name.ranges(of: marker).last else { return nil }
        let rest = name[range.upperBound...].split(separator: "-", maxSplits: 1)
        guard rest.count == 2, let pid = pid_t(rest[0]), pid > 0 else { return nil }
        return pid
    }

    /// Locks a temporary for this process's lifetime (the lock goes when `fd` is closed or the
    /// process dies, however it dies).
    static func lock(_ fd: Int32) {
        _ = flock(fd, LOCK_EX | LOCK_NB)
    }

    /// Removes the temporaries of dead runs in `folder`; returns the names removed.
    @discardableResult
    public static func removeDead(in folder: String) -> [String] {
        var removed: [String] = []
        for name in (try? directoryEntries(folder)) ?? [] {
            guard let pid = writerPID(name) else { continue }
            let path = joinPath(folder, name)
            guard isDead(path: path, pid: pid) else { continue }
            removeTree(path)
            removed.append(name)
        }
        return removed
    }

    /// Dead when no process holds the lock and the pid is not a live process (either alone could
    /// mislead: an older writer without the lock, a pid number reused).
    static func isDead(path: String, pid: pid_t) -> Bool {
        if kill(pid, 0) == 0 || errno == EPERM { return false }
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return errno == ELOOP }  // a link under a temporary's name: ours to drop
        defer { close(fd) }
        return flock(fd, LOCK_EX | LOCK_NB) == 0
    }
}
