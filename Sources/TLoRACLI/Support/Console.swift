#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TLoRAIO

/// Writes whole lines straight to file descriptors 1 and 2 (no shared C stdio state).
enum Console {
    static func out(_ text: String) { write(fd: 1, text.hasSuffix("\n") ? text : text + "\n") }

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

/// A progress line on stderr, redrawn in place, shown only when stderr is a terminal.
final class ProgressLine: @unchecked Sendable {  // updated from one thread at a time
    private let label: String
    private let total: Int
    private let enabled: Bool
    private var lastPercent = -1

    init(_ label: String, total: Int) {
        self.label = label
        self.total = max(total, 1)
        self.enabled = Console.stderrIsTerminal
    }

    func update(_ done: Int) {
        guard enabled else { return }
        let percent = min(100, done * 100 / total)
        guard percent != lastPercent else { return }
        lastPercent = percent
        let width = 30
        let filled = percent * width / 100
        Console.write(fd: 2, "\r\(label) [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] \(percent)%")
    }

    func finish() {
        guard enabled, lastPercent >= 0 else { return }
        Console.write(fd: 2, "\r\u{1B}[K")
    }
}
