import Synchronization

/// Reports how much of a piece of work is done, from whichever threads do it: each finished part
/// adds its size, and the callback hears (done, total). Commands draw a progress line from it.
public final class ProgressCounter: Sendable {
    public let total: Int
    private let report: (@Sendable (_ done: Int, _ total: Int) -> Void)?
    private let done = Atomic<Int>(0)

    public init(total: Int, report: (@Sendable (_ done: Int, _ total: Int) -> Void)?) {
        self.total = total
        self.report = report
    }

    /// Adds `amount` finished units.
    public func advance(by amount: Int = 1) {
        guard let report else { return }
        let now = done.add(amount, ordering: .relaxed).newValue
        report(min(now, total), total)
    }
}
