import CTLoRASystem
import Dispatch

/// Runs independent pieces of work on all cores.
package enum Parallel {
    /// Number of worker threads to use (the machine's active processors, or `TLORA_THREADS`), 1
    /// inside a parallel region.
    package static var workerCount: Int {
        if tlora_worker_depth() > 0 { return 1 }
        if let v = getenv("TLORA_THREADS"), let n = Int(String(cString: v)), n >= 1 { return n }
        return max(1, sysconfActiveProcessors())
    }

    /// `body(i)` for every `i` in `0..<count`, spread over the cores; returns results in order.
    /// The first error thrown (by index) is rethrown after all work has finished.
    /// `worthIt: false` runs serially: for small work, waking threads costs more than it saves.
    package static func map<R>(count: Int, worthIt: Bool = true, _ body: (Int) throws -> R) throws -> [R] {
        if count == 0 { return [] }
        if count == 1 || workerCount == 1 || !worthIt { return try (0..<count).map(body) }
        let results = UnsafeMutableBufferPointer<Result<R, any Error>?>.allocate(capacity: count)
        results.initialize(repeating: nil)
        defer {
            results.deinitialize()
            results.deallocate()
        }
        let box = UnsafeSendableBox(results)
        withoutActuallyEscaping(body) { body in
            let bodyBox = UnsafeSendableBox(body)
            DispatchQueue.concurrentPerform(iterations: count) { i in
                // Kernels called from here stay on this thread: the cores are already shared out.
                tlora_worker_enter()
                defer { tlora_worker_leave() }
                box.value[i] = Result { try bodyBox.value(i) }
            }
        }
        // Safe: concurrentPerform returns only after every iteration stored its result.
        return try results.map { try $0!.get() }
    }
}

/// Carries a non-Sendable value into concurrent work whose synchronization the caller guarantees
/// (each iteration touches its own slot; the joining call orders everything).
package struct UnsafeSendableBox<T>: @unchecked Sendable {
    package let value: T
    package init(_ value: T) { self.value = value }
}

#if canImport(Glibc)
import Glibc
private func sysconfActiveProcessors() -> Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
#else
import Darwin
private func sysconfActiveProcessors() -> Int { Int(sysconf(_SC_NPROCESSORS_ONLN)) }
#endif
