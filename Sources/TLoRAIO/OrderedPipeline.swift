import Dispatch
import Synchronization

/// Overlaps producing items with consuming them in order: a background thread produces items up
/// to `lookahead` ahead while the calling thread consumes them in order. Used to compute merged
/// tensors while the previous one is being written, so the disk never waits for arithmetic.
package enum OrderedPipeline {
    /// Runs `produce(i)` for `i` in `0..<count` on a background thread, in order, and
    /// `consume(i, item)` on the calling thread, in order. The first error (from either side) stops
    /// both and is rethrown; the producer has stopped when this returns, and every item it made
    /// that was not consumed has been dropped (so whatever an item owns is released).
    package static func run<Item: Sendable>(count: Int, lookahead: Int = 2, produce: @escaping @Sendable (Int) throws -> Item,
                                            consume: (Int, Item) throws -> Void) throws {
        guard count > 0 else { return }
        let state = PipelineState<Item>()
        // Made at 0 and then raised: libdispatch traps when a semaphore goes away below the value it
        // was made with, which an early stop leaves `slots` at.
        let slots = DispatchSemaphore(value: 0)
        for _ in 0..<max(1, lookahead) { slots.signal() }
        let ready = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        DispatchQueue.global(qos: .userInitiated).async {
            defer { finished.signal() }
            for i in 0..<count {
                slots.wait()
                if state.isCancelled { return }
                let result = Result { try produce(i) }
                let failed = if case .failure = result { true } else { false }
                state.store(i, result)
                ready.signal()
                if failed { return }
            }
        }
        defer {
            state.cancel()
            slots.signal()  // wakes a producer waiting for a slot, which then sees the cancellation
            finished.wait()
            state.drop()  // items made but never consumed
        }
        for i in 0..<count {
            ready.wait()
            let item = try state.take(i).get()
            try consume(i, item)
            slots.signal()
        }
    }
}

/// The items in flight, behind one lock.
final class PipelineState<Item: Sendable>: Sendable {
    private struct Shared {
        var items: [Int: Result<Item, any Error>] = [:]
        var cancelled = false
    }

    private let shared = Mutex(Shared())

    var isCancelled: Bool { shared.withLock { $0.cancelled } }

    func store(_ i: Int, _ r: sending Result<Item, any Error>) {
        shared.withLock { $0.items[i] = r }
    }

    func take(_ i: Int) -> Result<Item, any Error> {
        // Safe: `ready` is signalled only after item i was stored, and items are taken in order.
        shared.withLock { $0.items.removeValue(forKey: i)! }
    }

    func cancel() { shared.withLock { $0.cancelled = true } }

    func drop() { shared.withLock { $0.items.removeAll() } }
}
