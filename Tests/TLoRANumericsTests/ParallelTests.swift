import CTLoRASystem
import Dispatch
import Synchronization
import Testing
@testable import TLoRANumerics

/// The one worker team: every index once, in order, errors by index, nesting and competing callers
/// run serially instead of waiting for each other.
@Suite struct ParallelTests {
    struct Failure: Error, Equatable { let index: Int }

    @Test func mapReturnsEveryResultInOrder() throws {
        let squares = try Parallel.map(count: 1000) { $0 * $0 }
        #expect(squares == (0..<1000).map { $0 * $0 })
        #expect(try Parallel.map(count: 0) { $0 }.isEmpty)
    }

    @Test func mapRethrowsTheFirstErrorByIndexAfterAllWork() {
        let ran = Atomic<Int>(0)
        #expect(throws: Failure(index: 3)) {
            _ = try Parallel.map(count: 64) { i -> Int in
                ran.add(1, ordering: .relaxed)
                if i == 3 || i == 40 { throw Failure(index: i) }
                return i
            }
        }
        #expect(ran.load(ordering: .relaxed) == 64)
    }

    /// Work on a team thread is a worker: what it starts runs on its own thread.
    @Test func nestedWorkRunsSerially() throws {
        let depths = try Parallel.map(count: 8) { _ in
            (tlora_worker_depth(), Parallel.workerCount, try Parallel.map(count: 4) { $0 }.count)
        }
        #expect(depths.allSatisfy { $0.0 > 0 && $0.1 == 1 && $0.2 == 4 })
        #expect(tlora_worker_depth() == 0)
        let (a, b) = Parallel.pair(parallel: true, { Parallel.workerCount }, { Parallel.workerCount })
        #expect(a == 1 && b == 1)
    }

    @Test func rangesCoverEveryIndexOnce() {
        let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: 10_000)
        hits.initialize(repeating: 0)
        defer { hits.deallocate() }
        Parallel.forEachRange(10_000, minimum: 100) { range in for i in range { hits[i] += 1 } }
        #expect(hits.allSatisfy { $0 == 1 })
    }

    /// Two threads that want the team at once both finish: the one that finds it busy runs alone.
    @Test func competingCallersBothFinish() {
        let totals = Mutex<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            for _ in 0..<200 {
                let sum = (try? Parallel.map(count: 100) { $0 })?.reduce(0, +) ?? -1
                totals.withLock { $0.append(sum) }
            }
        }
        #expect(totals.withLock { $0.count == 400 && $0.allSatisfy { $0 == 4950 } })
    }
}
