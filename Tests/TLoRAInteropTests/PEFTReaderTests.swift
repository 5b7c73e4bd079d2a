import Testing
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import _TLoRATestSupport

@Suite struct PEFTReaderTests {
    func module(_ a: Adapter, _ name: String) throws -> AdapterModule { try #require(a.module(named: name), "no \(name)") }

    @Test func plainLoRA() throws {
        let a = try PEFTReader.read(directory: Fixtures.peft("llama-lora"))
        #expect(a.modules.count == 14)
        let q = try module(a, "model.layers.0.self_attn.q_proj")
        #expect(q.scale == 2.0)
        #expect(q.layout == .outIn)
        #expect(q.target == "model.layers.0.self_attn.q_proj.weight")
        guard case .lowRank(let A, let B) = q.update else { Issue.record("not low rank"); return }
        #expect(A.shape == [8, 64] && B.shape == [64, 8])
        let k = try module(a, "model.layers.1.self_attn.k_proj")
        #expect((k.outFeatures, k.inFeatures) == (32, 64))  // GQA: 2 KV heads of 16
        #expect(a.metadata.sourceFormat == "peft")
    }

    /// PEFT's rules: rsLoRA scale α/√r; rank_pattern and alpha_pattern keys match `(.*\.)?key$`.
    @Test func rsLoRAWithPatterns() throws {
        let a = try PEFTReader.read(directory: Fixtures.peft("llama-rslora-patterns"))
        let expected: [(String, Int, Double)] = [
            ("model.layers.0.self_attn.q_proj", 8, 16 / 8.0.squareRoot()),
            ("model.layers.1.self_attn.q_proj", 4, 16 / 4.0.squareRoot()),
            ("model.layers.0.self_attn.v_proj", 8, 7 / 8.0.squareRoot()),
            ("model.layers.1.mlp.down_proj", 2, 16 / 2.0.squareRoot()),
            ("model.layers.0.mlp.up_proj", 8, 5 / 8.0.squareRoot()),
            ("model.layers.1.mlp.up_proj", 8, 16 / 8.0.squareRoot()),
        ]
        for (name, rank, scale) in expected {
            let m = try module(a, name)
            guard case .lowRank(let A, _) = m.update else { Issue.record("not low rank"); continue }
            #expect(A.shape[0] == rank, "\(name)")
            #expect(m.scale == scale, "\(name): \(m.scale) vs \(scale)")
        }
    }

    @Test func doraMagnitudes() throws {
        let a = try PEFTReader.read(directory: Fixtures.peft("llama-dora"))
        for m in a.modules { #expect(m.doraMagnitude?.shape == [m.outFeatures]) }
        #expect(a.modules.count == 6)
    }

    @Test func embeddingLoRAAndModulesToSave() throws {
        let a = try PEFTReader.read(directory: Fixtures.peft("llama-embed-save"))
        let e = try module(a, "model.embed_tokens")
        #expect(e.kind == .embedding)
        #expect(e.layout == .inOut)
        #expect((e.outFeatures, e.inFeatures) == (64, 256))
        #expect(Set(a.replacedTensors.map(\.target)) == ["lm_head.weight", "model.embed_tokens.weight"])
    }

    @Test func conv1DLayersAreTransposed() throws {
        let a = try PEFTReader.read(directory: Fixtures.peft("gpt2-lora"))
        let c = try module(a, "transformer.h.0.attn.c_attn")
        #expect(c.layout == .inOut)
        #expect(c.targetShape == [64, 192])
    }

    @Test func trainedBiasesReplaceBaseBiases() throws {
        let a = try PEFTReader.read(directory: Fixtures.peft("bert-lora"))
        #expect(a.replacedTensors.contains { $0.target == "encoder.layer.0.attention.self.query.bias" })
        #expect(a.replacedTensors.allSatisfy { $0.target.hasSuffix(".bias") })
    }

    @Test func legacyBinReadsTheSameTensorsAsSafetensors() throws {
        let bin = try PEFTReader.read(directory: Fixtures.peft("llama-bin"))
        let st = try PEFTReader.read(directory: Fixtures.peft("llama-lora"))
        #expect(bin.modules.map(\.name).sorted() == st.modules.map(\.name).sorted())
        for m in bin.modules { #expect(m.scale == 2) }
    }

    @Test func unsupportedTypeIsRefusedByName() {
        #expect { try PEFTReader.read(directory: Fixtures.peft("llama-oft")) } throws: { error in
            guard let e = error as? InteropError else { return false }
            return e.code == .unsupported && e.path.hasSuffix("adapter_config.json") && e.problem.contains("OFT")
        }
    }

    @Test func rankThatContradictsTheTensorsIsRefused() {
        #expect { try PEFTReader.read(directory: Fixtures.peft("llama-lora-wrong-rank")) } throws: { error in
            (error as? InteropError)?.code == .shapeMismatch
        }
    }

    @Test(arguments: ["llama-lora", "llama-rslora-patterns", "llama-dora", "llama-embed-save", "gpt2-lora", "bert-lora", "minilm-trained"])
    func exportReproducesEveryTensorAndTheConfig(name: String) throws {
        let dir = TemporaryDirectory()
        let adapter = try PEFTReader.read(directory: Fixtures.peft(name))
        try PEFTWriter.write(adapter, to: dir.file("out"), overwrite: false)
        let original = try SafetensorsFile(path: Fixtures.peft(name) + "/adapter_model.safetensors")
        let exported = try SafetensorsFile(path: dir.file("out/adapter_model.safetensors"))
        #expect(Set(original.tensorNames) == Set(exported.tensorNames))
        for e in original.entries {
            let x = try #require(exported.entry(e.name))
            #expect(x.dtype == e.dtype && x.shape == e.shape)
            #expect(original.bytes(of: e).elementsEqual(exported.bytes(of: x)), "\(e.name) differs")
        }
        let c1 = try JSONParser.parse(readWholeFile(path: Fixtures.peft(name) + "/adapter_config.json"))
        let c2 = try JSONParser.parse(readWholeFile(path: dir.file("out/adapter_config.json")))
        #expect(c1 == c2)
    }

    @Test func patternKeysMatchLikePython() {
        let config = try? PEFTConfig(json: JSONParser.parse("""
            {"peft_type":"LORA","r":8,"lora_alpha":16,"rank_pattern":{"q_proj":2,"layers\\\\.1\\\\..*k_proj":3,"1.mlp.up_proj":5}}
            """), path: "c")
        #expect(config?.rank(for: "model.layers.0.self_attn.q_proj") == 2)
        #expect(config?.rank(for: "model.layers.0.self_attn.xq_proj") == 8)  // suffix must start at a dot
        #expect(config?.rank(for: "model.layers.1.self_attn.k_proj") == 3)   // regex key
        #expect(config?.rank(for: "model.layers.0.self_attn.k_proj") == 8)
        #expect(config?.rank(for: "model.layers.1.mlp.up_proj") == 5)
        #expect(config?.rank(for: "model.layers.11.mlp.up_proj") == 8)
    }
}
