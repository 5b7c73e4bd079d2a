import CTLoRASystem
import Dispatch

/// Splitting independent loop iterations over the cores for the decompositions' O(n²) parts
/// (secular roots, vector construction) and the two halves of a divide and conquer.
enum ParallelChunks {
    /// `body(range)` over consecutive ranges covering 0..<count, concurrently when there are at
    /// least `minimum` iterations per chunk and more than one core is free. Work inside runs as a
    /// worker (kernels it calls stay single-threaded).
    static func run(_ count: Int, minimum: Int, _ body: (Range<Int>) -> Void) {
        let threads = min(Parallel.coreCount, count / max(minimum, 1))
        if threads < 2 {
            if count > 0 { body(0..<count) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                tlora_worker_enter()
                defer { tlora_worker_leave() }
                box.value((t * count / threads)..<((t + 1) * count / threads))
            }
        }
    }

    /// `first()` and `second()` concurrently when `parallel` (and a second core is free), else in
    /// sequence.
    static func pair<A, B>(parallel: Bool, _ first: () -> A, _ second: () -> B) -> (A, B) {
        guard parallel && Parallel.coreCount > 1 else { return (first(), second()) }
        var a: A? = nil, b: B? = nil
        withUnsafeMutablePointer(to: &a) { pa in
            withUnsafeMutablePointer(to: &b) { pb in
                withoutActuallyEscaping(first) { f in
                    withoutActuallyEscaping(second) { s in
                        let box = UncheckedSendable((f, s, pa, pb))
                        DispatchQueue.concurrentPerform(iterations: 2) { i in
                            tlora_worker_enter()
                            defer { tlora_worker_leave() }
                            // Each iteration writes only its own result slot.
                            if i == 0 { box.value.2.pointee = box.value.0() } else { box.value.3.pointee = box.value.1() }
                        }
                    }
                }
            }
        }
        // Safe: concurrentPerform returns only after both iterations stored their results.
        return (a!, b!)
    }
}

/// Carries values into concurrent work whose synchronization the caller guarantees (disjoint
/// writes, joined by `concurrentPerform`).
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
