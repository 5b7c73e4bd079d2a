import Testing
import TLoRAIO
@testable import TLoRAMerge

/// The merge pipeline owns the buffers in flight: whichever side fails, and wherever the items are
/// (made and waiting, being written, half-made), every buffer goes back to the pool.
@Suite struct PipelineBufferTests {
    struct Stop: Error {}

    enum Failing: CaseIterable { case writer, producer, nothing }

    @Test(arguments: Failing.allCases)
    func noBufferOutlivesTheRun(failing: Failing) throws {
        let pool = BufferPool()
        var written = 0
        do {
            try OrderedPipeline.run(count: 40, lookahead: 3, produce: { i -> Merger.MergedBytes in
                let buffer = pool.buffer(1 << 16)
                buffer.contents.initializeMemory(as: UInt8.self, repeating: UInt8(truncatingIfNeeded: i))
                if failing == .producer && i == 7 { throw Stop() }  // a buffer already taken
                return .computed(buffer, .updated)
            }, consume: { i, item in
                if failing == .writer && i == 5 { throw Stop() }  // later items are in flight
                guard case .computed(let buffer, _) = item else { return }
                #expect(buffer.contents.allSatisfy { $0 == UInt8(truncatingIfNeeded: i) })
                written += 1
            })
            #expect(failing == .nothing)
        } catch is Stop {
            #expect(failing != .nothing)
        }
        #expect(written == [.writer: 5, .producer: 7, .nothing: 40][failing])
        #expect(pool.outstanding == 0)
    }
}
