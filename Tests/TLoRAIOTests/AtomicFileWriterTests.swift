import Testing
import TLoRAIO
import _TLoRATestSupport

/// The writer hands the kernel at most `largestWriteCall` bytes per call (page-cache folio sizes,
/// docs/BENCHMARKS.md); what lands in the file must not depend on how the bytes were split.
@Suite struct AtomicFileWriterTests {
    @Test func largeWritesArriveWholeAndInOrder() throws {
        let dir = TemporaryDirectory()
        let chunk = AtomicFileWriter.largestWriteCall
        // Sizes around the call size and one of several calls with a ragged end.
        let parts: [[UInt8]] = [chunk - 1, 1, chunk, chunk + 1, 3 * chunk + 12_345, 0, 7].enumerated().map { i, n in
            (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i &* 7) }
        }
        let out = try AtomicFileWriter(destination: dir.file("big.bin"), overwrite: false)
        for p in parts { try out.write(p) }
        let expected = parts.flatMap { $0 }
        #expect(out.bytesWritten == expected.count)
        try out.commit()
        let written = TestFiles.read(dir.file("big.bin"))
        #expect(written.count == expected.count)
        #expect(written == expected)
    }
}
