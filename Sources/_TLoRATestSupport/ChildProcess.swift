#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TLoRAIO

/// A `tlora` process started in the background, to be signalled while it works (interruption tests).
public final class ChildProcess {
    public let pid: pid_t
    private var reaped = false

    /// How a process ended.
    public enum Ending: Equatable, CustomStringConvertible, Sendable {
        case exited(Int32)
        case signalled(Int32)

        public var description: String {
            switch self {
            case .exited(let c): return "exit \(c)"
            case .signalled(let s): return "signal \(s)"
            }
        }
    }

    /// Starts `program args` with stdout to /dev/null and stderr to `stderr` (a pty's slave, to look
    /// like a terminal), default signal dispositions and an empty signal mask (whatever the test
    /// runner itself blocks or ignores).
    public init(_ program: String, _ args: [String], stderr: String = "/dev/null") throws {
        let argv = ([program] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_NOCTTY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t(), empty = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] { sigaddset(&defaults, s) }
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var pid: pid_t = 0
        let r = posix_spawn(&pid, argv[0]!, &actions, &attributes, argv, environ)  // safe: argv[0] is set
        guard r == 0 else { throw SpawnError(code: r) }
        self.pid = pid
    }

    public struct SpawnError: Error { public let code: Int32 }

    /// Sends `sig` if the process still runs.
    public func signal(_ sig: Int32) { if !reaped { kill(pid, sig) } }

    /// Whether the process has ended (reaping it when it has).
    public var hasEnded: Bool {
        if reaped { return true }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            ending = Self.decode(status)
            reaped = true
        }
        return reaped
    }

    private var ending: Ending?

    /// Waits for the process to end.
    public func wait() -> Ending {
        if let ending { return ending }
        var status: Int32 = 0
        _ = valueOrErrno { waitpid(pid, &status, 0) }
        reaped = true
        let e = Self.decode(status)
        ending = e
        return e
    }

    static func decode(_ status: Int32) -> Ending {
        (status & 0x7F) == 0 ? .exited((status >> 8) & 0xFF) : .signalled(status & 0x7F)
    }

    deinit {
        if !reaped {
            kill(pid, SIGKILL)
            _ = wait()
        }
    }
}

/// A pseudo-terminal: its slave path is given to a child as stderr, and what the child drew is read
/// from the master.
public final class PseudoTerminal {
    public let master: Int32
    public let slavePath: String

    /// Linux's /dev/ptmx (posix_openpt, unlockpt and ptsname are not visible to Swift's Glibc).
    public init?() {
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY)
        guard master >= 0 else { return nil }
        var unlock: Int32 = 0, number: UInt32 = 0
        let TIOCSPTLCK: UInt = 0x4004_5431, TIOCGPTN: UInt = 0x8004_5430
        guard ioctl(master, TIOCSPTLCK, &unlock) == 0, ioctl(master, TIOCGPTN, &number) == 0 else {
            close(master)
            return nil
        }
        slavePath = "/dev/pts/\(number)"
    }

    /// Everything written so far (reads until nothing more arrives for a moment).
    public func drain() -> String {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var p = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 200) > 0 else { break }
            let n = buffer.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    deinit { close(master) }
}
