import CTLoRASystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The one way tlora runs work in parallel: on the persistent worker team of `tlora_team.h`, which
/// the C kernels (GEMM, Jacobi) use too. Work on a team thread runs as a worker
/// (`tlora_worker_depth() > 0`): what it calls stays on its thread, so nested parallel work never
/// asks for more threads than there are cores, and a caller that finds the team busy simply runs
/// serially.
///
/// The bodies run concurrently: each must touch only its own results (an index's slot, a range, a
/// half), which is what the functions below hand it.
package enum Parallel {
    /// Threads that parallel work started here may use: the online processors (or
    /// `TLORA_THREADS`), and 1 on a team thread.
    package static var workerCount: Int { tlora_worker_depth() > 0 ? 1 : machineCores }

    /// The online processors (or `TLORA_THREADS`) wherever the caller runs: for libraries with
    /// threads of their own, such as libzstd's workers.
    package static let machineCores: Int = {
        if let v = getenv("TLORA_THREADS"), let n = Int(String(cString: v)), n >= 1 { return n }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }()

    /// `body(thread, threads)` on up to `wanted` threads of the team (thread 0 is the caller),
    /// returning when all are done; `threads` may be fewer than `wanted`, even 1.
    package static func team(_ wanted: Int, _ body: (_ thread: Int, _ threads: Int) -> Void) {
        let threads = tlora_team_acquire(Int32(clamping: wanted))
        defer { tlora_team_release(threads) }
        withoutActuallyEscaping(body) { body in
            var job = body
            withUnsafeMutablePointer(to: &job) { context in
                tlora_team_run(threads, { context, thread, threads in
                    // Safe: `context` is the job above, alive until tlora_team_run returns.
                    context!.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee(Int(thread), Int(threads))
                }, context)
            }
        }
    }

    /// `body(i)` for every `i` in `0..<count`, spread over the team (threads take the next index
    /// from a shared counter); results in order. The first error thrown (by index) is rethrown after
    /// all work has finished. `worthIt: false` runs serially: for small work, waking threads costs
    /// more than it saves.
    package static func map<R>(count: Int, worthIt: Bool = true, _ body: (Int) throws -> R) throws -> [R] {
        if count == 0 { return [] }
        let wanted = worthIt ? min(workerCount, count) : 1
        if wanted <= 1 { return try (0..<count).map(body) }
        let results = UnsafeMutableBufferPointer<Result<R, any Error>?>.allocate(capacity: count)
        results.initialize(repeating: nil)
        defer {
            results.deinitialize()
            results.deallocate()
        }
        let next = Atomic<Int>(0)
        team(wanted) { _, _ in
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if i >= count { return }
                results[i] = Result { try body(i) }
            }
        }
        // Safe: the team returns only after every index stored its result.
        return try results.map { try $0!.get() }
    }

    /// `body(range)` over consecutive ranges covering `0..<count`, one per thread, concurrently when
    /// there are at least `minimum` iterations per range and more than one thread is free.
    package static func forEachRange(_ count: Int, minimum: Int, _ body: (Range<Int>) -> Void) {
        let wanted = min(workerCount, count / max(minimum, 1))
        if wanted < 2 {
            if count > 0 { body(0..<count) }
            return
        }
        team(wanted) { t, n in body((t * count / n)..<((t + 1) * count / n)) }
    }

    /// `first()` and `second()` concurrently when `parallel` (and a second thread is free), else in
    /// sequence.
    package static func pair<A, B>(parallel: Bool, _ first: () -> A, _ second: () -> B) -> (A, B) {
        guard parallel && workerCount > 1 else { return (first(), second()) }
        var a: A? = nil, b: B? = nil
        withUnsafeMutablePointer(to: &a) { pa in
            withUnsafeMutablePointer(to: &b) { pb in
                team(2) { t, n in
                    if t == 0 { pa.pointee = first() }
                    if t == 1 || n == 1 { pb.pointee = second() }
                }
            }
        }
        // Safe: the team returns only after both results were stored.
        return (a!, b!)
    }
}
