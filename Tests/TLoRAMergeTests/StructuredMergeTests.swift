import Testing
import TLoRAConvert
import TLoRAMerge
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// `tlora merge` of every structured form into a synthetic checkpoint (conv weights 4-D, biases),
/// against docs/FORMAT.md's merge rules computed here in f64 from the dense ΔW.
@Suite struct StructuredMergeTests {
    @Test(arguments: [DType.f32, .bf16])
    func everyFormMergesAsTheSpecSays(dtype: DType) throws {
        let adapter = SampleAdapters.structured(seed: 17, dtype: .f32)
        var g = SeededGenerator(seed: 99)
        var base: [(name: String, tensor: StoredTensor)] = []
        for m in adapter.modules {
            base.append((m.target, StoredTensor((0..<(m.outFeatures * m.inFeatures)).map { _ in g.gaussian() * 0.5 }, shape: m.targetShape, dtype: dtype)))
            if m.biasDelta != nil || { if case .featureScale(let f) = m.update { return f.axis == .out }; return false }() {
                base.append((m.biasTarget, StoredTensor((0..<m.outFeatures).map { _ in g.gaussian() }, shape: [m.outFeatures], dtype: dtype)))
            }
        }
        base.append(("untouched.weight", StoredTensor([Float]([1, 2, 3]), shape: [3], dtype: dtype)))
        let dir = TemporaryDirectory()
        let baseDir = dir.file("base")
        #expect(makeDirectory(baseDir))
        try SafetensorsWriter.write(base, to: joinPath(baseDir, "model.safetensors"), overwrite: false)
        TestFiles.write(joinPath(baseDir, "config.json"), Array("{}".utf8))
        _ = try Merger.merge(adapter: adapter, adapterPath: "structured", base: try Checkpoint(path: baseDir), output: dir.file("out"))
        let merged = try Checkpoint(path: dir.file("out"))
        func values(_ name: String) throws -> [Double] {
            let (shard, e) = try #require(merged.entry(name))
            return ElementConversion.doubles(from: shard.bytes(of: e), dtype: e.dtype.floatType!)
        }
        let byName = Dictionary(uniqueKeysWithValues: base.map { ($0.name, $0.tensor.doubles()) })
        // f32 arithmetic on the way (≤ 1e-6 relative), then one rounding to the base dtype.
        let tolerance = dtype == .f32 ? 2e-6 : 8e-3
        for m in adapter.modules {
            let w = byName[m.target]!
            var expected = w
            let (out, inn, k) = (m.outFeatures, m.inFeatures, m.kernelSize)
            if case .featureScale(let f) = m.update {
                let v = f.vector.doubles()
                for o in 0..<out { for i in 0..<inn { expected[o * inn + i] *= f.axis == .out ? v[o] : v[i / k] } }
            } else {
                let delta = try DenseDelta.of(m, in: adapter)
                for i in expected.indices { expected[i] += delta.storage[i] }
            }
            if let mag = m.doraMagnitude?.doubles() {
                let group: (Int, Int) -> Int = m.doraAxis == .out ? { o, _ in o } : { _, i in i / k }
                var norms = [Double](repeating: 0, count: mag.count)
                for o in 0..<out { for i in 0..<inn { norms[group(o, i)] += expected[o * inn + i] * expected[o * inn + i] } }
                for o in 0..<out { for i in 0..<inn { expected[o * inn + i] *= mag[group(o, i)] / (norms[group(o, i)].squareRoot() + m.doraEpsilon) } }
            }
            let got = try values(m.target)
            #expect(Tolerance.relativeError(got, expected) <= tolerance, "\(m.name): \(Tolerance.relativeError(got, expected))")
            if let bias = byName[m.biasTarget] {
                var eb = bias
                if case .featureScale(let f) = m.update { eb = zip(bias, f.vector.doubles()).map { $0 * $1 } }
                if let d = m.biasDelta?.doubles() { eb = zip(bias, d).map { $0 + m.scale * $1 } }
                #expect(Tolerance.relativeError(try values(m.biasTarget), eb) <= tolerance, "\(m.biasTarget)")
            }
        }
        #expect(try values("untouched.weight") == [1, 2, 3])
    }

    @Test func aBiasChangeWithoutABaseBiasIsRefusedBeforeWriting() throws {
        let adapter = SampleAdapters.structured(seed: 17, dtype: .f32)
        let m = adapter.module(named: "conv1d.full")!
        let dir = TemporaryDirectory()
        let baseDir = dir.file("base")
        #expect(makeDirectory(baseDir))
        try SafetensorsWriter.write([(m.target, StoredTensor([Float](repeating: 0, count: 24), shape: m.targetShape))],
                                    to: joinPath(baseDir, "model.safetensors"), overwrite: false)
        let only = Adapter(modules: [m])
        #expect(throws: ConvertError.self) {
            try Merger.merge(adapter: only, adapterPath: "a", base: try Checkpoint(path: baseDir), output: dir.file("out"))
        }
        #expect(pathKind(dir.file("out")) == .missing)
    }
}
