import Testing
import TLoRAConvert
import TLoRAInputs
import TLoRAMerge
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// `tlora merge A B … --weights`: one pass equals merging A, then B into that result, and so on —
/// bit for bit on an f32 base; on a bf16 base the one pass rounds once (the f32 chain rounded to bf16).
@Suite struct MultiMergeTests {
    /// LoRA, DoRA (renormalizes what the adapters before it made), replaced embeddings, a LoKr
    /// (merged row by row from its Kronecker halves), other layers; negative and fractional weights.
    static let chain: [(name: String, weight: Double)] = [("llama-lora", 0.5), ("llama-dora", 1.0), ("llama-embed-save", -1.0),
                                                          ("llama-lokr", 0.7), ("llama-layers", 2.0)]

    static func tensors(_ path: String) throws -> [String: [Float]] {
        let c = try Checkpoint(path: path)
        var out: [String: [Float]] = [:]
        for name in c.tensorNames { out[name] = try c.entry(name)!.shard.tensor(name).floats() }
        return out
    }

    /// Merges the chain one adapter after the other; returns the last output.
    static func stepwise(_ adapters: [Adapter], base: String, dir: TemporaryDirectory) throws -> String {
        var current = base
        for (i, (adapter, item)) in zip(adapters, chain).enumerated() {
            let out = dir.file("step\(i)")
            _ = try Merger.merge(adapter: adapter, adapterPath: item.name, base: try Checkpoint(path: current), output: out,
                                 options: MergeOptions(scale: item.weight))
            current = out
        }
        return current
    }

    static func inputs(_ adapters: [Adapter]) -> [MergeInput] {
        zip(adapters, chain).map { MergeInput(adapter: $0, path: Fixtures.peft($1.name), weight: $1.weight) }
    }

    @Test func onePassEqualsOneAfterAnotherOnF32() throws {
        let dir = TemporaryDirectory()
        let adapters = try Self.chain.map { try AdapterLoader.load(Fixtures.peft($0.name)) }
        let base = Fixtures.model("tiny-llama")
        let report = try Merger.merge(Self.inputs(adapters), base: try ModelBase(path: base), output: dir.file("once"))
        let once = try Self.tensors(dir.file("once")), stepwise = try Self.tensors(try Self.stepwise(adapters, base: base, dir: dir))
        let original = try Self.tensors(base)
        #expect(once.keys.sorted() == original.keys.sorted())
        var changed = 0
        for (name, x) in once {
            #expect(x == stepwise[name], "\(name): one pass and one after the other differ")
            if x != original[name] { changed += 1 }
        }
        #expect(changed == 16, "the chain changes every tensor it touches (\(changed))")
        #expect(report.updatedTensors + report.replacedTensors == changed)
        // Tensors more than one adapter touches (the one-pass chain, not the single-adapter path) are
        // listed with the positions of the adapters that change them.
        let shared = report.changes.filter { $0.module?.split(separator: ":").first?.contains(",") == true }
        #expect(shared.count >= 8 && shared.contains { $0.module!.hasPrefix("1,2,") })
    }

    @Test func onePassRoundsOnceOnBF16() throws {
        let dir = TemporaryDirectory()
        let adapters = try Self.chain.map { try AdapterLoader.load(Fixtures.peft($0.name)) }
        let base = Fixtures.model("tiny-llama-bf16")
        _ = try Merger.merge(Self.inputs(adapters), base: try ModelBase(path: base), output: dir.file("once"))
        _ = try Merger.merge(Self.inputs(adapters), base: try ModelBase(path: base), output: dir.file("once-f32"), options: MergeOptions(dtype: .f32))
        let once = try Self.tensors(dir.file("once")), wide = try Self.tensors(dir.file("once-f32"))
        let stepwise = try Self.tensors(try Self.stepwise(adapters, base: base, dir: dir))
        for (name, x) in once {
            // Exactly the f32 accumulation rounded once to bf16 (nearest even)…
            let rounded = ElementConversion.bytes(from: try #require(wide[name]), as: .bf16).withUnsafeBytes { ElementConversion.floats(from: $0, dtype: .bf16) }
            #expect(x == rounded, "\(name)")
            // …and close to rounding after every adapter (a few bf16 ulps at most per element).
            #expect(Tolerance.relativeError(x, try #require(stepwise[name])) <= 1e-2, "\(name)")
        }
    }

    @Test func weightsScaleEachAdapter() throws {
        let dir = TemporaryDirectory()
        let lora = try PEFTReader.read(directory: Fixtures.peft("llama-lora"))
        let base = Fixtures.model("tiny-llama")
        // The same adapter with weights 1 and −1: nothing changes but rounding.
        _ = try Merger.merge([MergeInput(adapter: lora, path: "a", weight: 1), MergeInput(adapter: lora, path: "b", weight: -1)],
                             base: try ModelBase(path: base), output: dir.file("zero"))
        // Weights 0.25 and 0.5 of one adapter: its weight 0.75 (to f32 rounding of the two steps).
        _ = try Merger.merge([MergeInput(adapter: lora, path: "a", weight: 0.25), MergeInput(adapter: lora, path: "b", weight: 0.5)],
                             base: try ModelBase(path: base), output: dir.file("split"))
        _ = try Merger.merge(adapter: lora, adapterPath: "a", base: try Checkpoint(path: base), output: dir.file("whole"), options: MergeOptions(scale: 0.75))
        let zero = try Self.tensors(dir.file("zero")), split = try Self.tensors(dir.file("split")), whole = try Self.tensors(dir.file("whole"))
        let original = try Self.tensors(base)
        var moved = 0
        for (name, w) in original {
            #expect(Tolerance.relativeError(try #require(zero[name]), w) <= 1e-6, "\(name)")
            let s = try #require(split[name]), o = try #require(whole[name])
            // Compare the changes, not the weights: ‖ΔW‖ is small against ‖W‖.
            let ds = zip(s, w).map { Double($0) - Double($1) }, dw = zip(o, w).map { Double($0) - Double($1) }
            if dw.contains(where: { $0 != 0 }) {
                moved += 1
                #expect(Tolerance.relativeError(ds, dw) <= 1e-4, "\(name)")
            }
        }
        #expect(moved >= 7)
    }

    /// Every adapter is checked against the base before anything is written.
    @Test func aBadAdapterAnywhereStopsTheMergeBeforeWriting() throws {
        let dir = TemporaryDirectory()
        let lora = try PEFTReader.read(directory: Fixtures.peft("llama-lora"))
        let gpt2 = try PEFTReader.read(directory: Fixtures.peft("gpt2-lora"))
        let base = try ModelBase(path: Fixtures.model("tiny-llama"))
        #expect {
            try Merger.merge([MergeInput(adapter: lora, path: "a"), MergeInput(adapter: gpt2, path: Fixtures.peft("gpt2-lora"))], base: base, output: dir.file("out"))
        } throws: { e in
            (e as? ConvertError)?.code == .missingBaseTensor && "\(e)".contains("c_attn")
        }
        #expect(pathKind(dir.file("out")) == .missing)
        // An IA³ rescaling has no fraction to merge: refused by its weight, before writing.
        let ia3 = try AdapterLoader.load(Fixtures.peft("llama-ia3"), base: Fixtures.model("tiny-llama") + "/config.json")
        #expect {
            try Merger.merge([MergeInput(adapter: lora, path: "a"), MergeInput(adapter: ia3, path: "ia3", weight: 0.5)], base: base, output: dir.file("out"))
        } throws: { e in
            (e as? ConvertError)?.code == .notSupported && "\(e)".contains("IA³")
        }
        #expect(pathKind(dir.file("out")) == .missing)
        // The output may be none of the adapters, even with overwrite.
        let bin = try PEFTReader.read(directory: Fixtures.peft("llama-bin"))
        #expect(throws: (any Error).self) {
            try Merger.merge([MergeInput(adapter: lora, path: Fixtures.peft("llama-lora")), MergeInput(adapter: bin, path: Fixtures.peft("llama-bin"))],
                             base: base, output: Fixtures.peft("llama-bin"), options: MergeOptions(overwrite: true))
        }
        #expect(pathKind(Fixtures.peft("llama-bin") + "/adapter_config.json") == .file)
    }
}
