import Testing
import TLoRAFormat
import TLoRAIO
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// Every single-byte change, every truncation and every appended byte must be reported by `verify`.
@Suite struct CorruptionTests {
    /// A small valid file with every kind of update, written with the given codec.
    static func sampleFile(_ dir: TemporaryDirectory, codec: CodecChoice = .automatic, dtype: DType = .f32) throws -> [UInt8] {
        let path = dir.file("sample.tlora")
        try ContainerWriter.write(SampleAdapters.everyKind(seed: 3, dtype: dtype), to: path, options: WriteOptions(codec: codec, level: 3, overwrite: true))
        return TestFiles.read(path)
    }

    static func verify(_ bytes: [UInt8], in dir: TemporaryDirectory) -> IntegrityReport {
        let path = dir.file("mutant.tlora")
        TestFiles.write(path, bytes)
        return TLoRAFile.verify(path: path)
    }

    @Test(arguments: [CodecChoice.forced(.raw), .forced(.zstd), .forced(.bytegroupZstd)])
    func everySingleByteFlipIsDetected(codec: CodecChoice) throws {
        let dir = TemporaryDirectory()
        let original = try Self.sampleFile(dir, codec: codec)
        #expect(Self.verify(original, in: dir).isIntact)
        var undetected: [Int] = []
        for offset in 0..<original.count {
            var mutant = original
            mutant[offset] ^= 0x01 << UInt8(offset % 8)
            if Self.verify(mutant, in: dir).isIntact { undetected.append(offset) }
        }
        #expect(undetected.isEmpty, "flips not detected at offsets \(undetected.prefix(20)) of \(original.count)")
        #expect(original.count > 1000)
    }

    @Test func everyTruncationIsDetected() throws {
        let dir = TemporaryDirectory()
        let original = try Self.sampleFile(dir)
        for length in 0..<original.count {
            let report = Self.verify(Array(original[0..<length]), in: dir)
            #expect(!report.isIntact, "truncation to \(length) bytes not detected")
        }
    }

    @Test func everyDeletedByteIsDetected() throws {
        let dir = TemporaryDirectory()
        let original = try Self.sampleFile(dir, codec: .forced(.bytegroupZstd))
        for offset in stride(from: 0, to: original.count, by: 3) {
            var mutant = original
            mutant.remove(at: offset)
            #expect(!Self.verify(mutant, in: dir).isIntact, "deleting byte \(offset) not detected")
        }
    }

    @Test(arguments: [1, 2, 63, 64, 4096])
    func appendedBytesAreDetected(count: Int) throws {
        let dir = TemporaryDirectory()
        let original = try Self.sampleFile(dir)
        let zeros = Self.verify(original + [UInt8](repeating: 0, count: count), in: dir)
        #expect(!zeros.isIntact)
        #expect(zeros.problems.first?.code == .fileLengthMismatch, "expected a length mismatch, got \(zeros.problems)")
    }

    @Test func readerRefusesCorruptTensorButReadsOthers() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("a.tlora")
        try ContainerWriter.write(SampleAdapters.everyKind(seed: 3, dtype: .f32), to: path, options: WriteOptions(codec: .forced(.raw)))
        var bytes = TestFiles.read(path)
        let file = try TLoRAFile(path: path)
        let victim = file.header.tensors[1]
        bytes[file.header.dataStart + victim.offset] ^= 0x80
        TestFiles.write(path, bytes)
        let damaged = try TLoRAFile(path: path)
        #expect(throws: FormatError.tensorChecksumMismatch(path: path, tensor: damaged.header.describe(victim.name))) { try damaged.readTensor(victim.name) }
        _ = try damaged.readTensor(file.header.tensors[0].name)
        #expect(throws: FormatError.self) { try damaged.loadAdapter() }
    }

    @Test func nonFiniteValuesAreReported() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("nan.tlora")
        let module = AdapterModule(name: "m", outFeatures: 2, inFeatures: 2, scale: 1,
                                   update: .lowRank(a: StoredTensor([Float.nan, 1], shape: [1, 2]), b: StoredTensor([1, 1], shape: [2, 1])))
        try ContainerWriter.write(Adapter(modules: [module]), to: path)
        let report = TLoRAFile.verify(path: path)
        #expect(report.problems == [.nonFiniteValues(path: path, tensor: "m0.a (A of module m)")])
    }
}
