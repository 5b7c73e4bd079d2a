import Testing
import TLoRAConvert
import TLoRAMerge
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// The research formats, imported from fixtures that the three repositories' own code wrote
/// (Fixtures/README.md), against the ΔW that THEIR forward code computes (references/research.delta).
@Suite struct ResearchFormatTests {
    static let tensLoRAMethods = ["att", "qkv", "depth", "att-qkv", "att-depth", "qkv-depth", "att-qkv-depth"]

    static func references() throws -> SafetensorsFile { try SafetensorsFile(path: Fixtures.reference("research.delta.safetensors")) }

    static func ttLoRA() throws -> Adapter {
        try ResearchStateDict.read(path: Fixtures.path("research/ttlora-llama/adapter.pt"),
                                   options: ResearchOptions(alpha: 4, baseShapes: BaseShapes(checkpoint: try Checkpoint(path: Fixtures.model("tiny-llama"))),
                                                            ttLoRALayout: .contraction))
    }

    static func tensorGuide() throws -> Adapter {
        try ResearchStateDict.read(path: Fixtures.path("research/tt2lora-llama/adapter.safetensors"),
                                   options: ResearchOptions(alpha: 0.5, baseShapes: BaseShapes(checkpoint: try Checkpoint(path: Fixtures.model("tiny-llama")))))
    }

    static func tensLoRA(_ method: String) throws -> Adapter {
        try ResearchStateDict.read(path: Fixtures.path("research/tenslora-roberta-\(method).pt"), options: ResearchOptions(alpha: 2, construction: method))
    }

    /// Every module's ΔW (scale included) against the reference `<prefix>/<module>`, ≤ 1e-6 relative.
    static func checkDeltas(_ adapter: Adapter, prefix: String) throws {
        let refs = try references()
        var checked = 0
        for m in adapter.modules {
            let ref = try refs.tensor(prefix + "/" + m.name)
            #expect(ref.shape == [m.outFeatures, m.inFeatures], "\(m.name)")
            let ours = try DenseDelta.of(m, in: adapter)
            let error = Tolerance.relativeError(ours.storage, ref.doubles())
            #expect(error <= 1e-6, "\(prefix) \(m.name): \(error)")
            // The factored form (what to-lora, verify and export use) says the same.
            let f = try #require(try LowRankForm.of(m, in: adapter))
            let viaFactors = f.dense.storage.map { $0 * m.scale }
            #expect(Tolerance.relativeError(viaFactors, ref.doubles()) <= 1e-6, "\(prefix) \(m.name) via factors")
            checked += 1
        }
        #expect(checked == refs.tensorNames.filter { $0.hasPrefix(prefix + "/") }.count)
    }

    @Test func ttLoRAImportsAsReversedColumnTrain() throws {
        let a = try Self.ttLoRA()
        #expect(a.modules.map(\.name) == ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                                          "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"])
        let q = try #require(a.module(named: "model.layers.0.self_attn.q_proj"))
        guard case .tensorTrain(let tt) = q.update else { Issue.record("not a tensor train"); return }
        // m_factors_q = [8, 2, 4] over the input, n_factors_q = [2, 4, 8] over the output, rank 3.
        #expect(tt.columnModes == [8, 2, 4, 1, 1, 1] && tt.rowModes == [1, 1, 1, 2, 4, 8])
        #expect(tt.ranks == [1, 3, 3, 3, 3, 3, 1])
        #expect(tt.columnOrder == .reversed && tt.rowOrder == .forward)
        #expect(q.scale == 4 && q.outFeatures == 64 && q.inFeatures == 64)
        let v = try #require(a.module(named: "model.layers.1.self_attn.v_proj"))
        #expect(v.outFeatures == 32 && v.inFeatures == 64)
        try Self.checkDeltas(a, prefix: "ttlora-llama")
    }

    /// The cores keep their bytes: the import only reshapes `[r, n, r']` to `[r, 1, n, r']` / `[r, n, 1, r']`.
    @Test func ttLoRACoresKeepTheirBits() throws {
        let a = try Self.ttLoRA()
        let raw = try ResearchStateDict.tensors(path: Fixtures.path("research/ttlora-llama/adapter.pt"))
        for (name, t) in raw {
            let module = String(name.split(separator: ".").dropLast(2).joined(separator: "."))
            let k = Int(name.split(separator: ".").last!)!
            guard case .tensorTrain(let tt) = try #require(a.module(named: module)).update else { Issue.record(Comment(rawValue: name)); continue }
            #expect(tt.cores[k].bytes == t.bytes && tt.cores[k].dtype == t.dtype, "\(name)")
        }
    }

    @Test func tensorGuideImportsAsJointTrain() throws {
        let a = try Self.tensorGuide()
        #expect(a.modules.count == 4)
        let q = try #require(a.module(named: "model.layers.0.self_attn.q_proj"))
        guard case .jointTrain(let j) = q.update else { Issue.record("not a joint train"); return }
        #expect(j.rank == 4 && j.latentModes == [2, 1, 2] && j.generatedModes == [8, 4, 16] && j.ranks == [1, 3, 2, 1])
        #expect(j.latent.shape == [1, 4] && q.scale == 0.5)
        let v = try #require(a.module(named: "model.layers.0.self_attn.v_proj"))
        guard case .jointTrain(let jv) = v.update else { Issue.record("not a joint train"); return }
        #expect(jv.rank == 4 && jv.generatedModes == [6, 8, 8] && v.outFeatures == 32)
        try Self.checkDeltas(a, prefix: "tt2lora-llama")
    }

    @Test(arguments: tensLoRAMethods)
    func tensLoRAImportsAsTuckerGroups(method: String) throws {
        let a = try Self.tensLoRA(method)
        #expect(a.modules.count == 6)
        let heads = method.hasPrefix("att"), qkv = method.contains("qkv"), depth = method.contains("depth")
        // One tensor per (projection, layer) that the construction does not stack.
        #expect(a.tuckerGroups.count == (qkv ? 1 : 3) * (depth ? 1 : 2))
        for g in a.tuckerGroups {
            var dims = [32] + (heads ? [8, 4] : [32])
            if qkv { dims.append(3) }
            if depth { dims.append(2) }
            #expect(g.dimensions == dims, "\(g.name)")
            #expect(g.modes.map(\.role) == [.column] + (heads ? [.row, .row] : [.row]) + Array(repeating: .member, count: (qkv ? 1 : 0) + (depth ? 1 : 0)))
        }
        try Self.checkDeltas(a, prefix: "tenslora-\(method)")
    }

    /// dense-to-tucker stacks exactly as TensLoRA does: converting the exact LoRA form of a TensLoRA
    /// adapter with the same construction gives groups with the same modes, dimensions, labels and
    /// slice coordinates, and the same ΔW.
    @Test(arguments: tensLoRAMethods)
    func denseToTuckerStacksLikeTensLoRA(method: String) throws {
        let a = try Self.tensLoRA(method)
        let (lora, _) = try ToLoRA.convert(a, options: .init(target: .lossless, dtype: .f64))
        guard let kind = GroupKind(rawValue: method) else { Issue.record("no group kind \(method)"); return }
        let (tucker, _) = try DenseToTucker.convert(lora, options: .init(target: .lossless, group: kind, heads: 4, dtype: .f64))
        #expect(tucker.tuckerGroups.count == a.tuckerGroups.count)
        for (ours, theirs) in zip(tucker.tuckerGroups, a.tuckerGroups) {
            #expect(ours.dimensions == theirs.dimensions, "\(ours.name) vs \(theirs.name)")
            #expect(ours.modes == theirs.modes, "\(ours.name) vs \(theirs.name)")
        }
        for m in a.modules {
            let c = try #require(tucker.module(named: m.name))
            guard case .tuckerSlice(_, let i) = c.update, case .tuckerSlice(_, let j) = m.update else { Issue.record(Comment(rawValue: m.name)); continue }
            #expect(i == j, "\(m.name)")
            let error = Tolerance.relativeError(try DenseDelta.of(c, in: tucker).storage, try DenseDelta.of(m, in: a).storage)
            #expect(error <= 1e-9, "\(m.name): \(error)")
        }
    }

    /// import → .tlora-equivalent → to-lora → merge equals base + their ΔW.
    @Test(arguments: [("ttlora", "tiny-llama"), ("tensorguide", "tiny-llama"), ("tenslora", "tiny-roberta")])
    func mergeOfToLoRAMatchesReference(format: String, base: String) throws {
        let adapter: Adapter, prefix: String
        switch format {
        case "ttlora": (adapter, prefix) = (try Self.ttLoRA(), "ttlora-llama")
        case "tensorguide": (adapter, prefix) = (try Self.tensorGuide(), "tt2lora-llama")
        default: (adapter, prefix) = (try Self.tensLoRA("att-qkv-depth"), "tenslora-att-qkv-depth")
        }
        let (lora, summary) = try ToLoRA.convert(adapter, options: .init())
        #expect(summary.worstError <= 1e-6)
        let dir = TemporaryDirectory()
        let basePath = Fixtures.model(base)
        _ = try Merger.merge(adapter: lora, adapterPath: "research", base: try Checkpoint(path: basePath), output: dir.file("merged"))
        let merged = try Checkpoint(path: dir.file("merged")), original = try Checkpoint(path: basePath)
        let refs = try Self.references()
        for m in adapter.modules {
            let ref = try refs.tensor(prefix + "/" + m.name).doubles()
            let (ms, me) = try #require(merged.entry(m.target)), (bs, be) = try #require(original.entry(m.target))
            let w = ElementConversion.doubles(from: bs.bytes(of: be), dtype: .f32)
            let ours = ElementConversion.doubles(from: ms.bytes(of: me), dtype: .f32)
            let expected = zip(w, ref).map { Double(Float($0 + $1)) }
            #expect(Tolerance.relativeError(ours, expected) <= 1e-6, "\(m.name)")
            #expect(Tolerance.relativeError(ours, w) > 1e-6, "\(m.name) should change")
        }
    }
}
