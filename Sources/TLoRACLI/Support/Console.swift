import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TLoRAIO

/// Writes whole lines straight to file descriptors 1 and 2 (no shared C stdio state).
enum Console {
    static func out(_ text: String) { write(fd: 1, text.hasSuffix("\n") ? text : text + "\n") }

    /// Text for people on stdout: every line wrapped at spaces to `width` (JSON goes through `out`).
    static func text(_ text: String) {
        guard let width else { return out(text) }
        out(text.split(separator: "\n", omittingEmptySubsequences: false).flatMap { Formatting.wrap(String($0), width: width) }.joined(separator: "\n"))
    }

    /// Columns of the terminal on stdout, else `COLUMNS`; nil (unlimited) when neither says.
    static let width: Int? = {
        var size = winsize()
        if isatty(1) == 1, ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        if let c = getenv("COLUMNS"), let n = Int(String(cString: c)), n > 0 { return n }
        return nil
    }()

    static func err(_ text: String) { write(fd: 2, text.hasSuffix("\n") ? text : text + "\n") }

    /// Writes without adding a newline (progress redraws).
    static func write(fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = valueOrErrno { bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) } }  // safe: done < count
            guard case .success(let written) = n, written > 0 else { return }  // a closed pipe: nothing more to say
            done += written
        }
    }

    static func flush() {}

    /// Whether stderr is a terminal (progress is shown only then).
    static var stderrIsTerminal: Bool { isatty(2) == 1 }
}

/// A progress line on stderr, redrawn in place, shown only when stderr is a terminal (quiet when
/// piped or redirected). Updates may come from any thread.
final class ProgressLine: Sendable {
    private let label: String
    private let enabled: Bool
    private let lastPercent = Mutex(-1)

    init(_ label: String) {
        self.label = label
        self.enabled = Console.stderrIsTerminal
    }

    /// A callback for the library's progress reports: (done, total) in any unit.
    var callback: @Sendable (Int, Int) -> Void { { [self] done, total in update(done, of: total) } }

    func update(_ done: Int, of total: Int) {
        guard enabled else { return }
        let percent = min(100, done * 100 / max(total, 1))
        lastPercent.withLock { last in
            guard percent != last else { return }
            last = percent
            let width = 30
            let filled = percent * width / 100
            Console.write(fd: 2, "\r\(label) [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] \(percent)%")
        }
    }

    /// Runs `body` with this line shown, and clears it afterwards (also when `body` throws, so the
    /// error line starts clean).
    func during<T>(_ body: () throws -> T) rethrows -> T {
        defer { finish() }
        return try body()
    }

    /// Clears the line (before the command prints its result).
    func finish() {
        guard enabled else { return }
        lastPercent.withLock { last in
            if last >= 0 { Console.write(fd: 2, "\r\u{1B}[K") }
            last = -1
        }
    }
}
