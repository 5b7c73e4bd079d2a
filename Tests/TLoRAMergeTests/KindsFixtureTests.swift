import Testing
import TLoRAConvert
import TLoRAInputs
import TLoRAInterop
import TLoRAIO
import TLoRAMerge
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// `tlora merge` of every structured-kind fixture (PEFT LoKr/LoHa/AdaLoRA/VeRA/IA³ and conv
/// LoRA/LoHa/LoKr, LyCORIS lokr/loha/locon/full) against the merged weights the tools' own forward
/// passes give (Fixtures/kinds_fixtures.py): every changed tensor within 1e-5 relative in f32,
/// every other one byte-identical.
@Suite struct KindsFixtureTests {
    static func cases(_ prefix: String) -> [String] { Fixtures.kindMerges.map(\.name).filter { $0.hasPrefix(prefix) } }

    static func merged(_ name: String, in dir: TemporaryDirectory) throws -> (Checkpoint, Checkpoint) {
        let f = Fixtures.kindMerges.first { $0.name == name }!
        let base = Fixtures.model(f.base)
        let adapter = try AdapterLoader.load(Fixtures.path(f.adapter), base: base)
        _ = try Merger.merge(adapter: adapter, adapterPath: f.adapter, base: try Checkpoint(path: base), output: dir.file("merged"))
        return (try Checkpoint(path: dir.file("merged")), try Checkpoint(path: base))
    }

    static func compare(_ name: String) throws {
        let dir = TemporaryDirectory()
        let (merged, base) = try merged(name, in: dir)
        let ref = try SafetensorsFile(path: Fixtures.reference("kinds/\(name).merged.safetensors"))
        #expect(!ref.entries.isEmpty)
        for e in ref.entries {
            let (shard, ours) = try #require(merged.entry(e.name), "merged checkpoint lacks \(e.name)")
            #expect(ours.shape == e.shape, "\(e.name)")
            let a = ElementConversion.doubles(from: shard.bytes(of: ours), dtype: ours.dtype.floatType!)
            let b = ElementConversion.doubles(from: ref.bytes(of: e), dtype: .f32)
            #expect(Tolerance.relativeError(a, b) <= 1e-5, "\(name): \(e.name): \(Tolerance.relativeError(a, b))")
        }
        for tensor in base.tensorNames where ref.entry(tensor) == nil {
            let (bs, be) = base.entry(tensor)!, (ms, me) = merged.entry(tensor)!
            #expect(bs.bytes(of: be).elementsEqual(ms.bytes(of: me)), "\(name): \(tensor) should be copied unchanged")
        }
    }

    @Test(arguments: ["llama-lokr", "llama-lokr-factored", "llama-loha", "llama-adalora", "llama-vera", "llama-ia3",
                      "convnet-lora", "convnet-loha", "convnet-lokr"])
    func peftAdapterMergesLikeItsForwardPass(name: String) throws { try Self.compare(name) }

    @Test(arguments: Fixtures.kindMerges.map(\.name).filter { $0.hasPrefix("lycoris-") })
    func lycorisFileMergesLikeItsForwardPass(name: String) throws { try Self.compare(name) }

    /// Without a base a LyCORIS file keeps its flattened keys; with one they are the base's paths.
    @Test func lycorisNamesResolveAgainstTheBase() throws {
        let path = Fixtures.path("lycoris/llama-lokr.safetensors")
        let flat = try AdapterLoader.load(path)
        #expect(flat.modules.first?.name == "lycoris_model_layers_0_mlp_down_proj")
        let resolved = try AdapterLoader.load(path, base: Fixtures.model("tiny-llama") + "/config.json")
        #expect(resolved.modules.first?.name == "model.layers.0.mlp.down_proj")
        #expect(resolved.modules.first?.target == "model.layers.0.mlp.down_proj.weight")
        #expect(resolved.modules.first?.attributes["diffusion.flat"] == "model_layers_0_mlp_down_proj")
    }

    @Test func adaLoRAKeepsItsPrunedRanksAndScale() throws {
        let adapter = try AdapterLoader.load(Fixtures.peft("llama-adalora"), base: Fixtures.model("tiny-llama"))
        let ranks = adapter.modules.map { m -> Int in
            if case .diagonalLowRank(let a, _, _) = m.update { return a.shape[0] }
            return -1
        }
        #expect(ranks.contains(0) && ranks.allSatisfy { $0 >= 0 } && Set(ranks).count > 1, "\(ranks)")
        // lora_alpha 8 over the float32 rank before pruning (init_r 6) + 1e-5, whatever was kept.
        let q = try #require(adapter.module(named: "model.layers.0.self_attn.q_proj"))
        #expect(abs(q.scale - 8 / (6 + 1e-5)) < 1e-6)
    }

    @Test func veRAWithoutItsProjectionsSaysWhatToDo() throws {
        #expect { try AdapterLoader.load(Fixtures.peft("llama-vera-noproj"), base: Fixtures.model("tiny-llama")) } throws: { e in
            "\(e)".contains("save_projection=false") && "\(e)".contains("save it again with save_projection=True")
        }
    }

    @Test func veRAAndIA3NeedTheBaseShapes() throws {
        for name in ["llama-vera", "llama-ia3"] {
            #expect { try AdapterLoader.load(Fixtures.peft(name)) } throws: { e in "\(e)".contains("give the base model") }
            // A config.json of a Llama-family model is enough.
            let adapter = try AdapterLoader.load(Fixtures.peft(name), base: Fixtures.model("tiny-llama") + "/config.json")
            #expect(!adapter.modules.isEmpty)
        }
    }
}
