import Testing
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import _TLoRATestSupport

/// The structured kinds through the `tlora` binary: LyCORIS files exported back as LyCORIS files
/// (every tensor byte for byte, the metadata kept), PEFT LoKr as LyCORIS and back, to-lora of every
/// additive kind exact, inspect naming the forms, hostile inputs refused with one line.
@Suite struct KindsCLITests {
    static func run(_ args: [String]) throws -> CommandRunner.Result { try CommandRunner.tlora(args) }

    static let lycoris = ["llama-lokr", "llama-lokr-full", "llama-lokr-w1-dora", "llama-loha-dora-in", "llama-locon-bf16", "llama-full",
                          "convnet-locon-tucker", "convnet-loha-tucker", "convnet-lokr-tucker", "convnet-full"]

    @Test(arguments: lycoris)
    func lycorisExportGivesTheFileBack(name: String) throws {
        let dir = TemporaryDirectory()
        let source = Fixtures.path("lycoris/\(name).safetensors"), out = dir.file("out.safetensors")
        let r = try Self.run(["export", source, "--format", "lycoris", "-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        let a = try SafetensorsFile(path: source), b = try SafetensorsFile(path: out)
        #expect(Set(a.tensorNames) == Set(b.tensorNames), "\(Set(a.tensorNames).symmetricDifference(b.tensorNames).sorted())")
        for e in a.entries {
            let f = try #require(b.entry(e.name))
            #expect(f.dtype == e.dtype && f.shape == e.shape && a.bytes(of: e).elementsEqual(b.bytes(of: f)), "\(name): \(e.name)")
        }
        for (k, v) in a.metadata { #expect(b.metadata.contains { $0.key == k && $0.value == v }, "\(name): metadata \(k)") }
    }

    @Test func peftLoKrTravelsThroughLyCORISAndBack() throws {
        let dir = TemporaryDirectory()
        let lokr = Fixtures.peft("llama-lokr-factored")
        #expect(try Self.run(["export", lokr, "--format", "lycoris", "-o", dir.file("l.safetensors")]).status == 0)
        // LyCORIS's scale rule (α/r, r = w2_b's rows) must give back PEFT's scales.
        let peft = try PEFTReader.read(directory: lokr)
        let back = try DiffusionAdapter.read(path: dir.file("l.safetensors"))
        #expect(back.modules.map(\.scale) == peft.modules.map(\.scale))
        #expect(back.modules.map(\.update) == peft.modules.map(\.update))
        let r = try Self.run(["export", dir.file("l.safetensors"), "--format", "peft", "-o", dir.file("p"), "--base-config", Fixtures.model("tiny-llama")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try PEFTReader.read(directory: dir.file("p")).modules.map(\.update) == peft.modules.map(\.update))
    }

    @Test(arguments: ["llama-lokr", "llama-loha", "llama-adalora", "llama-vera", "convnet-lokr", "convnet-loha"])
    func toLoRAIsExact(name: String) throws {
        let dir = TemporaryDirectory()
        let r = try Self.run(["convert", "to-lora", Fixtures.peft(name), "-o", dir.file("l.tlora"), "--json",
                              "--base-config", Fixtures.model(name.hasPrefix("convnet") ? "tiny-convnet" : "tiny-llama")])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONParser.parse(Array(r.stdout.utf8))
        let worst = try #require(json["worst_rel_error"]?.doubleValue, "\(r.stdout.prefix(400))")
        #expect(worst <= 1e-6)
    }

    @Test func inspectNamesTheForms() throws {
        let r = try CommandRunner.tlora(["inspect", Fixtures.peft("convnet-lokr"), "--base-config", Fixtures.model("tiny-convnet")], environment: ["COLUMNS": "200"])
        #expect(r.status == 0 && r.stdout.contains("kronecker") && r.stdout.contains("4x4x3x3 tucker r1") && r.stdout.contains("16×12×1×1"), "\(r.stdout)")
        let ly = try CommandRunner.tlora(["inspect", Fixtures.path("lycoris/llama-loha-dora-in.safetensors")], environment: ["COLUMNS": "200"])
        #expect(ly.status == 0 && ly.stdout.contains("hadamard+dora(in)"), "\(ly.stdout)")
    }

    struct Hostile: CustomTestStringConvertible, Sendable {
        var name: String
        var edit: @Sendable ([String: StoredTensor]) -> [String: StoredTensor]
        var expected: String
        var testDescription: String { name }
    }

    static let hostile: [Hostile] = [
        Hostile(name: "Kronecker product not the layer", edit: { t in
            var t = t
            t["base_model.model.model.layers.0.self_attn.q_proj.lokr_w1"] = StoredTensor([Float](repeating: 0.1, count: 12), shape: [4, 3])
            return t
        }, expected: "updates a 32×24 weight but the base's model.layers.0.self_attn.q_proj.weight is 64×64"),
        Hostile(name: "missing factor", edit: { t in
            t.filter { !$0.key.hasSuffix("layers.0.mlp.down_proj.lokr_w2_b") }
        }, expected: "no lokr_w2_b"),
        Hostile(name: "extra factor", edit: { t in
            var t = t
            t["base_model.model.model.layers.0.self_attn.q_proj.lokr_w1_a"] = StoredTensor([Float](repeating: 0.1, count: 8), shape: [8, 1])
            return t
        }, expected: "both lokr_w1 and lokr_w1_a/_b"),
        Hostile(name: "rank contradicts the config", edit: { t in
            var t = t
            t["base_model.model.model.layers.0.mlp.down_proj.lokr_w2_a"] = StoredTensor([Float](repeating: 0.1, count: 16 * 2), shape: [16, 2])
            t["base_model.model.model.layers.0.mlp.down_proj.lokr_w2_b"] = StoredTensor([Float](repeating: 0.1, count: 2 * 32), shape: [2, 32])
            return t
        }, expected: "gives rank 4 but the tensors have rank 2"),
        Hostile(name: "NaN factor", edit: { t in
            var t = t
            t["base_model.model.model.layers.0.self_attn.q_proj.lokr_w1"] = StoredTensor([Float](repeating: .nan, count: 64), shape: [8, 8])
            return t
        }, expected: "NaN or infinite"),
    ]

    @Test(arguments: hostile)
    func hostilePEFTLoKrGivesOneLine(h: Hostile) throws {
        let dir = TemporaryDirectory()
        let src = Fixtures.peft("llama-lokr")
        let out = dir.file("bad")
        #expect(makeDirectory(out))
        let st = try SafetensorsFile(path: src + "/adapter_model.safetensors")
        var tensors: [String: StoredTensor] = [:]
        for e in st.entries { tensors[e.name] = try st.tensor(e.name) }
        tensors = h.edit(tensors)
        try SafetensorsWriter.write(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, to: out + "/adapter_model.safetensors", overwrite: false)
        TestFiles.write(out + "/adapter_config.json", TestFiles.read(src + "/adapter_config.json"))
        let r = try Self.run(["merge", out, "--base", Fixtures.model("tiny-llama"), "-o", dir.file("m")])
        let lines = r.stderr.split(separator: "\n")
        #expect(r.status == 1 && lines.count == 1 && r.stderr.contains(h.expected) && r.stderr.contains("bad"), "\(h.name): \(r.stderr)")
        #expect(pathKind(dir.file("m")) == .missing)
    }

    static let hostileLyCORIS: [Hostile] = [
        Hostile(name: "alpha of the wrong shape", edit: { t in
            var t = t
            t["lycoris_model_layers_0_mlp_down_proj.alpha"] = StoredTensor([Float](repeating: 2, count: 4), shape: [4])
            return t
        }, expected: "alpha has shape [4]; it must be a single number"),
        Hostile(name: "missing factor", edit: { t in
            t.filter { $0.key != "lycoris_model_layers_0_mlp_down_proj.lora_up.weight" }
        }, expected: "lycoris_model_layers_0_mlp_down_proj"),
        Hostile(name: "factors of the wrong layer", edit: { t in
            var t = t
            t["lycoris_model_layers_0_mlp_down_proj.lora_down.weight"] = StoredTensor([Float](repeating: 0.1, count: 4 * 64), shape: [4, 64])
            return t
        }, expected: "model.layers.0.mlp.down_proj"),
        Hostile(name: "NaN alpha", edit: { t in
            var t = t
            t["lycoris_model_layers_0_mlp_down_proj.alpha"] = StoredTensor([Float.nan], shape: [])
            return t
        }, expected: "alpha is nan"),
    ]

    /// A damaged LyCORIS file of one model: one line naming the file, no output.
    @Test(arguments: hostileLyCORIS)
    func hostileLyCORISGivesOneLine(h: Hostile) throws {
        let dir = TemporaryDirectory()
        let st = try SafetensorsFile(path: Fixtures.path("lycoris/llama-locon-bf16.safetensors"))
        var tensors: [String: StoredTensor] = [:]
        for e in st.entries { tensors[e.name] = try st.tensor(e.name) }
        let bad = dir.file("bad.safetensors")
        try SafetensorsWriter.write(h.edit(tensors).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, to: bad, overwrite: false)
        let r = try Self.run(["merge", bad, "--base", Fixtures.model("tiny-llama"), "-o", dir.file("m")])
        let lines = r.stderr.split(separator: "\n")
        #expect(r.status == 1 && lines.count == 1 && r.stderr.contains(h.expected) && r.stderr.contains("bad.safetensors"), "\(h.name): \(r.stderr)")
        #expect(pathKind(dir.file("m")) == .missing)
    }

    /// IA³ has no ΔW without the base: conversions refuse it with one line naming the adapter.
    @Test func ia3ConversionsRefuseNamingTheFile() throws {
        let dir = TemporaryDirectory()
        let ia3 = Fixtures.peft("llama-ia3"), config = Fixtures.model("tiny-llama")
        for args in [["convert", "to-lora", ia3, "--base-config", config, "-o", dir.file("l.tlora")],
                     ["convert", "dense-to-tt", ia3, "--base-config", config, "-o", dir.file("t.tlora")],
                     ["merge", ia3, "--base", config, "--scale", "2", "-o", dir.file("m")]] {
            let r = try Self.run(args)
            #expect(r.status == 1 && r.stderr.hasPrefix("error: \(ia3): module ") && r.stderr.contains("IA³")
                    && r.stderr.split(separator: "\n").count == 1, "\(args[0...1]): \(r.stderr)")
        }
        #expect(try directoryEntries(dir.path).isEmpty)
    }

    /// A LyCORIS file of one model: its own keys without a base (and a note saying so), the base's
    /// module paths with `--base-config`.
    @Test func inspectNamesLyCORISModulesByTheBase() throws {
        let file = Fixtures.path("lycoris/llama-lokr.safetensors")
        let flat = try Self.run(["inspect", file, "--json"])
        #expect(flat.status == 0 && flat.stdout.contains("\"lycoris_model_layers_0_mlp_down_proj\"") && flat.stdout.contains("resolves them"), "\(flat.stdout.prefix(600))")
        let named = try Self.run(["inspect", file, "--json", "--base-config", Fixtures.model("tiny-llama")])
        #expect(named.status == 0 && named.stdout.contains("\"model.layers.0.mlp.down_proj\"") && !named.stdout.contains("lycoris_model"), "\(named.stdout.prefix(600))")
    }
}
