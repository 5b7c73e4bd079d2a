import Dispatch

/// Overlaps producing items with consuming them in order: a background thread produces items up
/// to `lookahead` ahead while the calling thread consumes them in order. Used to compute merged
/// tensors while the previous one is being written, so the disk never waits for arithmetic.
package enum OrderedPipeline {
    /// Runs `produce(i)` for `i` in `0..<count` on a background thread, in order, and
    /// `consume(i, item)` on the calling thread, in order. The first error (from either side) stops
    /// both and is rethrown; the producer has stopped when this returns.
    package static func run<Item>(count: Int, lookahead: Int = 2, produce: @escaping @Sendable (Int) throws -> Item,
                                 consume: (Int, Item) throws -> Void) throws {
        guard count > 0 else { return }
        let state = PipelineState<Item>()
        let slots = DispatchSemaphore(value: max(1, lookahead))
        let ready = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let shared = UnsafeSendableBox((state, slots, ready, finished))
        DispatchQueue.global(qos: .userInitiated).async {
            let (state, slots, ready, finished) = shared.value
            defer { finished.signal() }
            for i in 0..<count {
                slots.wait()
                if state.isCancelled { return }
                let result = Result { try produce(i) }
                state.store(i, result)
                ready.signal()
                if case .failure = result { return }
            }
        }
        defer {
            state.cancel()
            slots.signal()  // wakes a producer waiting for a slot, which then sees the cancellation
            finished.wait()
        }
        for i in 0..<count {
            ready.wait()
            let item = try state.take(i).get()
            try consume(i, item)
            slots.signal()
        }
    }
}

/// The items in flight; every access holds the lock.
final class PipelineState<Item>: @unchecked Sendable {
    private let lock = DispatchSemaphore(value: 1)
    private var items: [Int: Result<Item, any Error>] = [:]
    private var cancelled = false

    var isCancelled: Bool {
        lock.wait()
        defer { lock.signal() }
        return cancelled
    }

    func store(_ i: Int, _ r: Result<Item, any Error>) {
        lock.wait()
        items[i] = r
        lock.signal()
    }

    func take(_ i: Int) -> Result<Item, any Error> {
        lock.wait()
        defer { lock.signal() }
        // Safe: `ready` is signalled only after item i was stored, and items are taken in order.
        return items.removeValue(forKey: i)!
    }

    func cancel() {
        lock.wait()
        cancelled = true
        lock.signal()
    }
}
