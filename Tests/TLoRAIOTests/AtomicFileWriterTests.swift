#if canImport(Glibc)
import Glibc
#endif
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

    /// Unbuffered writers gather bytes into aligned chunks and pad the tail: the file must still hold
    /// exactly the bytes written, whatever their split, with copies from another file among them, on
    /// a filesystem that takes `O_DIRECT` (/tmp here) and on one that may not (/dev/shm, tmpfs).
    @Test(arguments: ["/tmp", "/dev/shm"])
    func unbufferedWritesArriveWholeAndInOrder(root: String) throws {
        guard pathKind(root) == .directory else { return }
        let dir = TemporaryDirectory(root: root)
        let chunk = 8 << 20
        let source: [UInt8] = (0..<(3 * chunk / 2)).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 17) }
        TestFiles.write(dir.file("source.bin"), source)
        let input = open(dir.file("source.bin"), O_RDONLY)
        defer { close(input) }
        // (bytes to write, or a range of the source to copy); sizes around the alignment and the chunk.
        let sizes = [1, 4095, 4097, chunk - 3, chunk, 0, chunk + 5000, 2 * chunk + 17, 12]
        for (total, parts) in [("ragged", sizes), ("aligned", [4096, chunk - 4096, 3 * 4096]), ("empty", [])] {
            let out = try AtomicFileWriter(destination: dir.file("\(total).bin"), overwrite: false, unbuffered: true)
            var expected: [UInt8] = []
            for (i, n) in parts.enumerated() {
                if i % 3 == 2 {
                    let offset = (i * 7919) % (source.count - n + 1)
                    try source.withUnsafeBytes { try out.copy(from: input, offset: offset, count: n, fallback: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + n)])) }
                    expected += source[offset..<(offset + n)]
                } else {
                    let part = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i &* 7) }
                    try out.write(part)
                    expected += part
                }
            }
            #expect(out.bytesWritten == expected.count)
            try out.commit()
            let written = TestFiles.read(dir.file("\(total).bin"))
            #expect(written.count == expected.count, "\(total) under \(root)")
            #expect(written == expected, "\(total) under \(root)")
        }
    }

    /// A writer dropped before `commit` leaves nothing, unbuffered too.
    @Test func unbufferedWriterDroppedLeavesNothing() throws {
        let dir = TemporaryDirectory()
        var temporary = ""
        do {
            let out = try AtomicFileWriter(destination: dir.file("gone.bin"), overwrite: false, unbuffered: true)
            temporary = out.temporaryPath
            try out.write([UInt8](repeating: 7, count: (8 << 20) + 100))
            #expect(pathKind(temporary) == .file)
        }
        #expect(pathKind(temporary) == .missing)
        #expect(pathKind(dir.file("gone.bin")) == .missing)
    }

    /// A filesystem that takes the unbuffered open but refuses a write (blocks larger than the
    /// alignment), simulated with 1000-byte chunks, which no block device takes unbuffered: the sink
    /// goes on through the buffered descriptor and the bytes still arrive whole.
    @Test func unbufferedSinkFallsBackWhenAWriteIsRefused() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("odd.bin")
        let f = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        #expect(f >= 0)
        defer { close(f) }
        guard let sink = UnbufferedSink(path: path, bufferedFD: f, chunk: 1000, alignment: 1) else { return }  // no O_DIRECT here at all
        let bytes = (0..<5_555).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        try bytes.withUnsafeBytes { try sink.append($0) }
        try sink.finish(length: bytes.count)
        #expect(TestFiles.read(path) == bytes, "direct writes \(sink.isDirect ? "taken" : "refused, buffered instead")")
    }
}
