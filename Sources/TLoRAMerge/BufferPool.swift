import Synchronization

/// Reusable byte buffers for tensors in flight between the merge's arithmetic and its writer, so
/// each tensor does not fault in (and zero) fresh pages. A buffer goes back to the pool when its
/// last reference goes (`PooledBuffer.deinit`), whichever way that happens: written, dropped by a
/// failed computation, or left in the pipeline when an error stopped it. The memory is freed with
/// the pool.
final class BufferPool: Sendable {
    private let free = Mutex<[MemoryBlock]>([])
    private let live = Atomic<Int>(0)

    /// A buffer of at least `count` bytes, of which the first `count` are the tensor's.
    func buffer(_ count: Int) -> PooledBuffer {
        let reused = free.withLock { free -> MemoryBlock? in
            guard let i = free.indices.filter({ free[$0].bytes.count >= count }).min(by: { free[$0].bytes.count < free[$1].bytes.count }) else { return nil }
            return free.remove(at: i)
        }
        live.add(1, ordering: .relaxed)
        return PooledBuffer(reused ?? MemoryBlock(byteCount: count), count: count, pool: self)
    }

    /// A buffer holding a copy of `bytes`.
    func holding(_ bytes: [UInt8]) -> PooledBuffer {
        let b = buffer(bytes.count)
        bytes.withUnsafeBytes { b.contents.copyMemory(from: $0) }
        return b
    }

    fileprivate func giveBack(_ block: MemoryBlock) {
        free.withLock { $0.append(block) }
        live.subtract(1, ordering: .relaxed)
    }

    /// Buffers handed out and not yet given back (tests check that an error leaks none).
    var outstanding: Int { live.load(ordering: .relaxed) }
}

/// One tensor's bytes on their way from the arithmetic to the writer, given back to the pool when
/// the last reference goes.
final class PooledBuffer: Sendable {
    private let block: MemoryBlock
    let count: Int
    private let pool: BufferPool

    fileprivate init(_ block: MemoryBlock, count: Int, pool: BufferPool) {
        self.block = block
        self.count = count
        self.pool = pool
    }

    /// The tensor's bytes.
    var contents: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: block.bytes[0..<count]) }

    deinit { pool.giveBack(block) }
}

/// Raw memory, freed with the block. The producer fills it, then the pipeline hands it to the
/// writer, which orders the two: one thread at a time touches it, which the compiler cannot see
/// through raw memory (hence unchecked).
final class MemoryBlock: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer

    init(byteCount: Int) { bytes = .allocate(byteCount: max(byteCount, 1), alignment: 64) }

    deinit { bytes.deallocate() }
}
