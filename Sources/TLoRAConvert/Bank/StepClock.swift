#if canImport(Glibc)
import Glibc
#endif

/// One named step's wall-clock and process CPU seconds. On a shared machine the CPU seconds say
/// what the step costs; the wall seconds also count the time other processes held the cores.
public struct StepTiming: Sendable {
    public var step: String
    public var wall: Double
    public var cpu: Double
}

/// Times consecutive steps (`tlora-bench bank`, the scale notes in docs/ARCHITECTURE.md).
struct StepClock {
    private(set) var steps: [StepTiming] = []
    private var wall = StepClock.seconds(CLOCK_MONOTONIC)
    private var cpu = StepClock.seconds(CLOCK_PROCESS_CPUTIME_ID)

    /// Ends the current step under `name` and starts the next.
    mutating func mark(_ name: String) {
        let w = Self.seconds(CLOCK_MONOTONIC), c = Self.seconds(CLOCK_PROCESS_CPUTIME_ID)
        steps.append(StepTiming(step: name, wall: w - wall, cpu: c - cpu))
        wall = w
        cpu = c
    }

    static func seconds(_ clock: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
