import Testing
import TLoRAFormat
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// The research formats through the `tlora` binary: inspect, lossless import, verify, to-lora,
/// PEFT export and merge; hostile variants end in one line naming the file.
@Suite struct ResearchFormatCLITests {
    struct Source: Sendable, CustomTestStringConvertible {
        let name: String
        let file: String
        let options: [String]
        let reference: String
        let base: String
        var testDescription: String { name }
    }

    static let sources: [Source] = [
        Source(name: "ttlora", file: Fixtures.path("research/ttlora-llama/adapter.pt"),
               options: ["--alpha", "4", "--ttlora-layout", "contraction", "--base-config", Fixtures.model("tiny-llama")], reference: "ttlora-llama", base: "tiny-llama"),
        Source(name: "tensorguide", file: Fixtures.path("research/tt2lora-llama/adapter.safetensors"),
               options: ["--alpha", "0.5", "--base-config", Fixtures.model("tiny-llama")], reference: "tt2lora-llama", base: "tiny-llama"),
        Source(name: "tenslora", file: Fixtures.path("research/tenslora-roberta-qkv.pt"),
               options: ["--alpha", "2", "--construction", "qkv"], reference: "tenslora-qkv", base: "tiny-roberta"),
    ]

    static func run(_ args: [String]) throws -> CommandRunner.Result { try CommandRunner.tlora(args) }

    static func deltas(of path: String) throws -> [String: [Double]] {
        let refs = try SafetensorsFile(path: Fixtures.reference("research.delta.safetensors"))
        var out: [String: [Double]] = [:]
        for n in refs.tensorNames where n.hasPrefix(path + "/") { out[String(n.dropFirst(path.count + 1))] = try refs.tensor(n).doubles() }
        return out
    }

    @Test(arguments: sources)
    func importIsLosslessAndEveryCommandWorks(source: Source) throws {
        let dir = TemporaryDirectory()
        let inspect = try Self.run(["inspect", source.file] + source.options)
        #expect(inspect.status == 0, "\(inspect.stderr)")
        let tl = dir.file("a.tlora")
        let imported = try Self.run(["convert", "import", source.file, "-o", tl] + source.options)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(try Self.run(["verify", tl]).status == 0)
        // Every adapter tensor of the state dict is in the file with its bits (TensLoRA's tltorch
        // aliases are the same tensors and are stored once).
        let stored = try TLoRAFile(path: tl).loadAdapter()
        var storedTensors: [StoredTensor] = stored.tuckerGroups.flatMap { [$0.core] + $0.factors }
        for m in stored.modules {
            switch m.update {
            case .tensorTrain(let tt): storedTensors += tt.cores
            case .jointTrain(let j): storedTensors += j.cores + [j.latent]
            default: break
            }
        }
        for (name, t) in try ResearchStateDict.tensors(path: source.file) {
            #expect(storedTensors.contains { $0.bytes == t.bytes && $0.dtype == t.dtype && $0.elementCount == t.elementCount }, "\(name) lost its bits")
        }
        // verify --against the research file itself: every module identical.
        let against = try Self.run(["verify", tl, "--against", source.file, "--max-rel-error", "1e-12"] + source.options)
        #expect(against.status == 0, "\(against.stdout) \(against.stderr)")
        // to-lora, then PEFT export: PEFT's ΔW equals their construction's.
        let lora = dir.file("lora.tlora")
        #expect(try Self.run(["convert", "to-lora", tl, "-o", lora]).status == 0)
        let peft = dir.file("peft")
        let export = try Self.run(["export", tl, "--format", "peft", "-o", peft])
        #expect(export.status == 0, "\(export.stderr)")
        let exported = try PEFTReader.read(directory: peft)
        let refs = try Self.deltas(of: source.reference)
        #expect(exported.modules.count == refs.count)
        for m in exported.modules {
            guard case .lowRank(let a, let b) = m.update, let ref = refs[m.name] else { Issue.record(Comment(rawValue: m.name)); continue }
            let delta = matmul(b.matrix(), a.matrix()).storage.map { $0 * m.scale }
            #expect(Tolerance.relativeError(delta, ref) <= 1e-6, "\(m.name)")
        }
        // merge straight from the research file (shapes from --base) equals base + ΔW.
        let merged = dir.file("merged")
        let mergeArgs = ["merge", source.file, "--base", Fixtures.model(source.base), "-o", merged]
            + source.options.filter { !$0.contains("/") && $0 != "--base-config" }
        let m = try Self.run(mergeArgs)
        #expect(m.status == 0, "\(m.stderr)")
        let out = try Checkpoint(path: merged), base = try Checkpoint(path: Fixtures.model(source.base))
        for (name, ref) in refs {
            let (ms, me) = try #require(out.entry(name + ".weight")), (bs, be) = try #require(base.entry(name + ".weight"))
            let w = ElementConversion.doubles(from: bs.bytes(of: be), dtype: .f32)
            let expected = zip(w, ref).map { Double(Float($0 + $1)) }
            #expect(Tolerance.relativeError(ElementConversion.doubles(from: ms.bytes(of: me), dtype: .f32), expected) <= 1e-6, "\(name)")
        }
    }

    /// `dense-to-tt --joint` on a real PEFT adapter: per-module table with the measured error,
    /// honest totals, and `verify --against` the source agrees with the bound.
    @Test(arguments: [0.0, 0.05, 0.3])
    func denseToTTJointThroughTheCLI(e: Double) throws {
        let dir = TemporaryDirectory()
        let out = dir.file("joint.tlora")
        let r = try Self.run(["convert", "dense-to-tt", Fixtures.peft("llama-lora"), "--joint", "--max-rel-error", "\(e)", "-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("joint_train") && r.stdout.contains("worst error") && r.stdout.contains("their source's 16384"), "\(r.stdout)")
        let inspect = try Self.run(["inspect", out])
        #expect(inspect.stdout.contains("joint_train"), "\(inspect.stdout)")
        let verify = try Self.run(["verify", out, "--against", Fixtures.peft("llama-lora"), "--max-rel-error", e == 0 ? "1e-6" : "\(e)"])
        #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")
        #expect(try TLoRAFile(path: out).header.requiredFeatures == ["joint-train"])
    }

    // MARK: hostile variants

    struct Hostile: Sendable, CustomTestStringConvertible {
        let name: String
        let source: Int
        let edit: @Sendable ([(name: String, tensor: StoredTensor)]) -> [(name: String, tensor: StoredTensor)]
        let options: [String]?
        let expected: String
        var testDescription: String { name }
    }

    static func replacing(_ key: String, with t: @escaping @Sendable (StoredTensor) -> StoredTensor) -> @Sendable ([(name: String, tensor: StoredTensor)]) -> [(name: String, tensor: StoredTensor)] {
        { list in list.map { $0.name == key ? ($0.name, t($0.tensor)) : $0 } }
    }

    static func random(_ shape: [Int]) -> StoredTensor { StoredTensor((0..<shape.reduce(1, *)).map { Float($0 % 7) * 0.1 + 0.05 }, shape: shape) }

    static let q = "model.layers.0.self_attn.q_proj"
    static let hostile: [Hostile] = [
        Hostile(name: "TT-LoRA missing core", source: 0, edit: { $0.filter { $0.name != q + ".tt_cores.2" } }, options: nil, expected: "TT cores 2 missing"),
        Hostile(name: "TT-LoRA bond rank mismatch", source: 0, edit: replacing(q + ".tt_cores.1") { _ in random([4, 2, 3]) }, options: nil,
                expected: "core 1 starts with rank 4 but core 0 ends with rank 3"),
        Hostile(name: "TT-LoRA wrong mode product", source: 0, edit: replacing(q + ".tt_cores.0") { _ in random([1, 7, 3]) }, options: nil,
                expected: "do not split into input modes multiplying to 64"),
        Hostile(name: "TT-LoRA NaN", source: 0, edit: replacing(q + ".tt_cores.3") { t in
            var v = t.floats(); v[5] = .nan; return StoredTensor(v, shape: t.shape) }, options: nil, expected: "core 3 holds NaN"),
        Hostile(name: "TT-LoRA without --alpha", source: 0, edit: { $0 }, options: ["--base-config", Fixtures.model("tiny-llama")], expected: "give --alpha"),
        Hostile(name: "TT-LoRA without base shapes", source: 0, edit: { $0 }, options: ["--alpha", "4"], expected: "give the base model with --base-config"),
        Hostile(name: "TensorGuide missing latent", source: 1, edit: { $0.filter { $0.name != q + ".z_latent" } }, options: nil, expected: "no z_latent"),
        Hostile(name: "TensorGuide wrong generated length", source: 1, edit: replacing(q + ".tt_layer.tt_cores.2") { _ in random([2, 2, 15, 1]) }, options: nil,
                expected: "not r × (in + out)"),
        Hostile(name: "TensorGuide latent size", source: 1, edit: replacing(q + ".z_latent") { _ in random([1, 5]) }, options: nil,
                expected: "latent modes multiply to 4 but the latent holds 5"),
        Hostile(name: "TensorGuide bond rank mismatch", source: 1, edit: replacing(q + ".tt_layer.tt_cores.1") { _ in random([2, 1, 4, 2]) }, options: nil,
                expected: "core 1 starts with rank 2 but core 0 ends with rank 3"),
        Hostile(name: "TensLoRA wrong construction", source: 2, edit: { $0 }, options: ["--alpha", "2", "--construction", "att-qkv-depth"],
                expected: "has 5 modes, but the core is"),
        Hostile(name: "TensLoRA without construction", source: 2, edit: { $0 }, options: ["--alpha", "2"], expected: "give --construction"),
        Hostile(name: "TensLoRA shared tensor differs", source: 2,
                edit: replacing("roberta.encoder.layer.0.attention.self.key.adapter.tensor_lora_module.tucker_core") { t in
                    var v = t.floats(); v[0] += 1; return StoredTensor(v, shape: t.shape) },
                options: nil, expected: "shares one tensor between roberta.encoder.layer.0.attention.self.query and roberta.encoder.layer.0.attention.self.key"),
        Hostile(name: "TensLoRA factor rank mismatch", source: 2,
                edit: replacing("roberta.encoder.layer.1.attention.self.query.adapter.tensor_lora_module.tucker_factors.1") { _ in random([32, 2]) },
                options: nil, expected: "tucker_factors.1 has shape [32, 2] but the core's mode 1 has rank 5"),
    ]

    /// The unpickler accepts the `_metadata` that `Module.state_dict()` attaches (and drops it), and
    /// still refuses any other BUILD state.
    @Test(arguments: [("_metadata", "a bare PyTorch archive is not an adapter directory"), ("evil", "BUILD with state is not allowed")])
    func stateDictMetadataOnly(key: String, expected: String) throws {
        let dir = TemporaryDirectory()
        // {} (the object), {key: {}} (the state), BUILD, STOP.
        let pickle: [UInt8] = [0x80, 0x02, 0x7D, 0x7D, 0x58] + HostileInputTests.u32(UInt32(key.utf8.count)) + Array(key.utf8) + [0x7D, 0x73, 0x62, 0x2E]
        let path = dir.file("state.pt")
        TestFiles.write(path, ZipBuilder.stored([("state/data.pkl", pickle)]))
        let r = try Self.run(["inspect", path])
        #expect(r.status == 1 && r.stderr.contains(expected), "\(r.stderr)")
    }

    @Test(arguments: hostile)
    func hostileVariantsGiveOneLine(h: Hostile) throws {
        let dir = TemporaryDirectory()
        let src = Self.sources[h.source]
        // TensLoRA's tltorch aliases would flag the edit as a differing alias first: drop them.
        let tensors = try ResearchStateDict.tensors(path: src.file).filter { !$0.name.contains(".tltorch_tensor.") }
        let path = dir.file("hostile.safetensors")
        try SafetensorsWriter.write(h.edit(tensors), to: path, overwrite: true)
        let r = try Self.run(["convert", "import", path, "-o", dir.file("out.tlora")] + (h.options ?? src.options))
        #expect(r.status == 1)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(r.stderr)")
        #expect(r.stderr.hasPrefix("error: \(path): "), "\(r.stderr)")
        #expect(r.stderr.contains(h.expected), "\(r.stderr)")
        #expect(pathKind(dir.file("out.tlora")) == .missing)
    }
}
