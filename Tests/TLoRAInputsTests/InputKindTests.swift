import Testing
import TLoRAInputs
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import _TLoRATestSupport

/// What a path holds is decided from its contents; anything else is refused by case.
@Suite struct InputKindTests {
    static let kinds: [(String, InputKind)] = [
        ("peft/llama-lora", .peftDirectory), ("peft/llama-bin", .peftDirectory), ("mlx/tiny-llama-lora", .mlxDirectory),
        ("gguf/tiny-llama-lora.llamacpp.f32.gguf", .gguf), ("models/tiny-llama", .checkpoint),
        ("models/tiny-llama/model.safetensors", .safetensors), ("peft/llama-bin/adapter_model.bin", .pickle),
        ("research/ttlora-llama/adapter.pt", .research), ("research/tt2lora-llama/adapter.safetensors", .research),
    ]

    @Test(arguments: kinds)
    func detectsEachFixture(relative: String, kind: InputKind) throws {
        #expect(try InputKind.detect(Fixtures.path(relative)) == kind)
    }

    @Test func refusesWhatItCannotRead() throws {
        let dir = TemporaryDirectory()
        #expect(throws: InputError.unrecognizedDirectory(path: dir.path)) { try InputKind.detect(dir.path) }
        TestFiles.write(dir.file("notes.txt"), Array("hello".utf8))
        #expect(throws: InputError.unrecognizedFile(path: dir.file("notes.txt"))) { try InputKind.detect(dir.file("notes.txt")) }
        #expect(throws: IOError.notFound(path: dir.file("missing"))) { try InputKind.detect(dir.file("missing")) }
        let checkpoint = Fixtures.model("tiny-llama")
        #expect(throws: InputError.checkpointNotAdapter(path: checkpoint)) { try AdapterLoader.load(checkpoint) }
        let archive = Fixtures.path("peft/llama-bin/adapter_model.bin")
        #expect(throws: InputError.bareArchive(path: archive)) { try AdapterLoader.load(archive) }
        #expect("\(InputError.bareArchive(path: archive))".hasPrefix(archive + ": "))
    }

    /// A GGUF adapter of a Llama model needs the head counts; a base directory gives them.
    @Test func theBaseSuppliesHeadCounts() throws {
        let gguf = Fixtures.path("gguf/tiny-llama-lora.llamacpp.f32.gguf")
        let base = Fixtures.model("tiny-llama")
        #expect(try GGUFAdapter.Heads(configAt: base) == GGUFAdapter.Heads(attention: 4, keyValue: 2))
        #expect(try GGUFAdapter.Heads(configAt: base + "/config.json") == GGUFAdapter.Heads(attention: 4, keyValue: 2))
        #expect(try GGUFAdapter.Heads(configAt: Fixtures.peft("llama-lora")) == nil)
        #expect(throws: (any Error).self) { try AdapterLoader.load(gguf) }
        let fromBase = try AdapterLoader.load(gguf, base: base)
        let explicit = try AdapterLoader.load(gguf, heads: GGUFAdapter.Heads(attention: 4, keyValue: 2))
        #expect(fromBase.modules.map(\.name) == explicit.modules.map(\.name))
        #expect(try BaseShapes(base: base)?.weightShape(of: "model.layers.0.self_attn.k_proj") == [32, 64])
        #expect(try BaseShapes(base: base + "/config.json") == nil)
    }

    /// A research state dict takes its layer shapes from the base's weights.
    @Test func theBaseSuppliesResearchShapes() throws {
        let file = Fixtures.path("research/ttlora-llama/adapter.pt")
        let adapter = try AdapterLoader.load(file, base: Fixtures.model("tiny-llama"), research: ResearchOptions(alpha: 4, ttLoRALayout: .contraction))
        #expect(!adapter.modules.isEmpty)
        #expect(adapter.metadata.sourceFormat == "ttlora")
    }
}
