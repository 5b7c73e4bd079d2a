import Testing
@testable import TLoRAFormat
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// The writer's choice of zstd effort (docs/FORMAT.md §3.1): level 1 everywhere, the high level on
/// the smallest compressible planes within a budget, `--level` on every compressible plane.
@Suite struct CompressionEffortTests {
    /// Gaussian f32 tensors of the given element counts (exponent planes compress, mantissas do not).
    static func adapter(sizes: [Int], seed: UInt64) -> Adapter {
        var g = SeededGenerator(seed: seed)
        let modules = sizes.enumerated().map { i, n -> AdapterModule in
            let a = RandomTensors.gaussianMatrix(rows: 1, cols: n, using: &g, as: Float.self)
            let b = RandomTensors.gaussianMatrix(rows: 1, cols: 1, using: &g, as: Float.self)
            return AdapterModule(name: "m\(i)", outFeatures: 1, inFeatures: n, scale: 1,
                                 update: .lowRank(a: StoredTensor(a, dtype: .f32), b: StoredTensor(b, dtype: .f32)))
        }
        return Adapter(modules: modules)
    }

    static func write(_ adapter: Adapter, level: Int32?) throws -> (bytes: [UInt8], report: WriteReport) {
        let dir = TemporaryDirectory()
        let path = dir.file("a.tlora")
        let report = try ContainerWriter.write(adapter, to: path, options: WriteOptions(level: level))
        #expect(try TLoRAFile(path: path).loadAdapter() == adapter)
        #expect(TLoRAFile.verify(path: path).isIntact)
        return (TestFiles.read(path), report)
    }

    @Test func automaticSitsBetweenLevelOneAndTheHighLevel() throws {
        // Small tensors (all within the budget) and one whose exponent plane (1 MiB) is not.
        let adapter = Self.adapter(sizes: [4096, 8192, 16384, 1 << 20], seed: 3)
        let fast = try Self.write(adapter, level: 1).report.fileLength
        let automatic = try Self.write(adapter, level: nil).report.fileLength
        let high = try Self.write(adapter, level: WriteOptions.automaticHighLevel).report.fileLength
        #expect(high <= automatic && automatic < fast, "high \(high), automatic \(automatic), level 1 \(fast)")
    }

    @Test func automaticIsDeterministic() throws {
        let adapter = Self.adapter(sizes: [1000, 5000, 70000, 300000], seed: 4)
        #expect(try Self.write(adapter, level: nil).bytes == Self.write(adapter, level: nil).bytes)
    }

    @Test func budgetGoesToTheSmallestPlanesFirst() throws {
        // Every small plane fits the budget, so the small tensors come out exactly as at the high
        // level; the 4 MiB-element tensor's planes exceed the budget and stay at level 1.
        let adapter = Self.adapter(sizes: [2048, 4096, 4 << 20], seed: 5)
        let automatic = try Self.write(adapter, level: nil).report.tensors
        let high = try Self.write(adapter, level: WriteOptions.automaticHighLevel).report.tensors
        let fast = try Self.write(adapter, level: 1).report.tensors
        for name in ["m0.a", "m1.a"] {
            #expect(automatic.first { $0.name == name }?.checksum == high.first { $0.name == name }?.checksum, "\(name)")
        }
        #expect(automatic.first { $0.name == "m2.a" }?.checksum == fast.first { $0.name == "m2.a" }?.checksum)
    }

    @Test func workerThreadsWriteOneStandardFrame() throws {
        var g = SeededGenerator(seed: 6)
        let values = RandomTensors.gaussianMatrix(rows: 1, cols: 1 << 18, using: &g, as: Float.self).storage
        let bytes = values.withUnsafeBytes { Array($0) }
        let frame = try bytes.withUnsafeBytes { try Zstd.compress($0, level: 3, workers: 2) }
        #expect(try frame.withUnsafeBytes { try Zstd.frameLength($0) } == frame.count)
        var decoded = [UInt8](repeating: 0, count: bytes.count)
        let context = try Zstd.DecompressionContext()
        try frame.withUnsafeBytes { f in try decoded.withUnsafeMutableBytes { try Zstd.decompressFrame(f, into: $0, context: context.pointer) } }
        #expect(decoded == bytes)
    }
}
