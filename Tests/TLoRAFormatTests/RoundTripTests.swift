import Testing
import TLoRAFormat
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

@Suite struct RoundTripTests {
    static let codecs: [CodecChoice] = [.automatic, .forced(.raw), .forced(.zstd), .forced(.bytegroupZstd)]

    @Test(arguments: DType.allCases, [0, 1, 2, 3])
    func everyKindRoundTripsBitExact(dtype: DType, codecIndex: Int) throws {
        let dir = TemporaryDirectory()
        let adapter = SampleAdapters.everyKind(seed: 7 + UInt64(codecIndex), dtype: dtype)
        let path = dir.file("a.tlora")
        let report = try ContainerWriter.write(adapter, to: path, options: WriteOptions(codec: Self.codecs[codecIndex], level: 3))
        #expect(report.fileLength == TestFiles.read(path).count)
        let loaded = try TLoRAFile(path: path).loadAdapter()
        #expect(loaded == adapter)
        #expect(TLoRAFile.verify(path: path).isIntact)
    }

    @Test func emptyAdapterRoundTrips() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("empty.tlora")
        try ContainerWriter.write(Adapter(), to: path)
        let loaded = try TLoRAFile(path: path).loadAdapter()
        #expect(loaded == Adapter())
        #expect(TLoRAFile.verify(path: path).isIntact)
    }

    @Test func zeroTensorsCompressToAlmostNothing() throws {
        let dir = TemporaryDirectory()
        let zeros = StoredTensor([Float](repeating: 0, count: 64 * 1024), shape: [64, 1024])
        let module = AdapterModule(name: "m", outFeatures: 1024, inFeatures: 64, scale: 1,
                                   update: .lowRank(a: StoredTensor([Float](repeating: 0.5, count: 64 * 64), shape: [64, 64]), b: zeros.reshaped([1024, 64])))
        let path = dir.file("z.tlora")
        let report = try ContainerWriter.write(Adapter(modules: [module]), to: path)
        let b = try #require(report.tensors.first { $0.name == "m0.b" })
        #expect(b.codec == .bytegroupZstd)
        #expect(b.length < 200)
    }

    @Test func refusesToOverwriteWithoutForce() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("a.tlora")
        let adapter = SampleAdapters.lora(seed: 1, modules: 1, out: 8, in: 8, rank: 2)
        try ContainerWriter.write(adapter, to: path)
        let before = TestFiles.read(path)
        #expect(throws: (any Error).self) { try ContainerWriter.write(SampleAdapters.lora(seed: 2, modules: 1, out: 8, in: 8, rank: 2), to: path) }
        #expect(TestFiles.read(path) == before)
        try ContainerWriter.write(SampleAdapters.lora(seed: 2, modules: 1, out: 8, in: 8, rank: 2), to: path, options: WriteOptions(overwrite: true))
        #expect(TestFiles.read(path) != before)
    }

    @Test func invalidAdapterIsRefusedAndNothingIsWritten() throws {
        let dir = TemporaryDirectory()
        var adapter = SampleAdapters.lora(seed: 1, modules: 1, out: 8, in: 8, rank: 2)
        adapter.modules[0].outFeatures = 9
        let path = dir.file("bad.tlora")
        #expect(throws: ModelError.self) { try ContainerWriter.write(adapter, to: path) }
        #expect(TestFiles.read(path).isEmpty)
    }
}
