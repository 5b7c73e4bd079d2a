#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock phases of the decompositions, printed to stderr when `TLORA_DEBUG_SVD` is set (for
/// finding where time goes; no cost otherwise beyond one branch per phase).
struct PhaseTimer {
    static let enabled: Bool = getenv("TLORA_DEBUG_SVD") != nil
    private var last: Double
    private let label: String

    init(_ label: String) {
        self.label = label
        last = PhaseTimer.enabled ? PhaseTimer.now() : 0
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    mutating func mark(_ phase: @autoclosure () -> String) {
        guard PhaseTimer.enabled else { return }
        let t = PhaseTimer.now()
        let text = "\(label) \(phase()): \(((t - last) * 1e3 * 100).rounded() / 100) ms\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
        last = t
    }
}
