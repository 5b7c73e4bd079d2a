import Testing
import TLoRAConvert
import TLoRAMerge
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `Extractor`: every bound measured independently — the extracted adapter is merged into the base
/// and the result compared with the fine-tuned weights — on a synthetic pair, on the committed real
/// pair (layer 0 of a full fine-tune of all-MiniLM-L6-v2), and on the whole fine-tune when
/// `TLORA_MINILM_FINETUNED` names it (scripts/minilm-finetuned.sh, `make test`).
@Suite struct ExtractTests {
    /// A base checkpoint and a fine-tune of it: a low-rank change plus noise on the linear layers,
    /// a conv kernel, biases, a norm, an embedding; one layer unchanged.
    static func syntheticPair(in dir: TemporaryDirectory, seed: UInt64 = 5, noise: Double = 1e-3) -> (base: String, finetuned: String) {
        var g = SeededGenerator(seed: seed)
        func gaussian(_ n: Int, _ s: Double = 1) -> [Double] { (0..<n).map { _ in g.gaussian() * s } }
        var base: [(String, [Int], [Double])] = [
            ("model.embed_tokens.weight", [40, 24], gaussian(960)),
            ("model.layers.0.self_attn.q_proj.weight", [24, 24], gaussian(576, 0.2)),
            ("model.layers.0.self_attn.q_proj.bias", [24], gaussian(24, 0.1)),
            ("model.layers.0.mlp.up_proj.weight", [64, 24], gaussian(1536, 0.2)),
            ("model.layers.0.mlp.down_proj.weight", [24, 64], gaussian(1536, 0.2)),
            ("model.layers.0.conv.weight", [16, 4, 3, 3], gaussian(576, 0.2)),
            ("model.layers.0.norm.weight", [24], gaussian(24)),
            ("model.layers.1.self_attn.q_proj.weight", [24, 24], gaussian(576, 0.2)),
        ]
        var ft = base
        for i in ft.indices {
            let (name, shape, values) = ft[i]
            var v = values
            if name.contains("layers.1") { continue }  // unchanged
            if shape.count >= 2 && !name.contains("embed") {
                let out = shape[0], inF = shape.dropFirst().reduce(1, *)
                let b = gaussian(out * 3, 0.05), a = gaussian(3 * inF, 0.05)
                for r in 0..<out { for c in 0..<inF { for k in 0..<3 { v[r * inF + c] += b[r * 3 + k] * a[k * inF + c] } } }
            }
            for j in v.indices { v[j] += noise * g.gaussian() * 0.1 }
            ft[i].2 = v
        }
        let paths = (dir.file("base"), dir.file("finetuned"))
        for (path, tensors) in [(paths.0, base), (paths.1, ft)] {
            _ = makeDirectory(path)
            try? SafetensorsWriter.write(tensors.map { ($0.0, StoredTensor($0.2, shape: $0.1, dtype: .f32)) }, to: path + "/model.safetensors", overwrite: true)
            TestFiles.write(path + "/config.json", Array(#"{"model_type": "llama"}"#.utf8))
        }
        base.removeAll()
        return paths
    }

    /// Merges `adapter` into `base` and returns, per module, ‖(W_merged − W_base) − (W_ft − W_base)‖ / ‖W_ft − W_base‖,
    /// and checks every replaced tensor came out equal to the fine-tune's.
    static func mergedErrors(_ adapter: Adapter, base: String, finetuned: String, dir: TemporaryDirectory) throws -> [String: Double] {
        let out = dir.file("merged-\(UInt64.random(in: 0..<UInt64.max))")
        _ = try Merger.merge(adapter: adapter, adapterPath: "extracted", base: try Checkpoint(path: base), output: out)
        let merged = try Checkpoint(path: out), b = try Checkpoint(path: base), f = try Checkpoint(path: finetuned)
        func values(_ c: Checkpoint, _ name: String) throws -> [Double] { try c.entry(name)!.shard.tensor(name).doubles() }
        var errors: [String: Double] = [:]
        for m in adapter.modules {
            let w0 = try values(b, m.target), w1 = try values(f, m.target), wm = try values(merged, m.target)
            var d2 = 0.0, n2 = 0.0
            for i in w0.indices { let want = w1[i] - w0[i]; let got = wm[i] - w0[i]; d2 += (got - want) * (got - want); n2 += want * want }
            errors[m.name] = (d2 / n2).squareRoot()
        }
        for r in adapter.replacedTensors {
            #expect(try values(merged, r.target) == values(f, r.target), "\(r.target) kept whole")
        }
        removeTree(out)
        return errors
    }

    @Test(arguments: [ConversionTarget(maxRank: 2), ConversionTarget(maxRank: 3), ConversionTarget(maxRelativeError: 0.05), ConversionTarget(maxRelativeError: 0.3)])
    func syntheticBoundsHoldAfterMerging(target: ConversionTarget) throws {
        let dir = TemporaryDirectory()
        let (basePath, ftPath) = Self.syntheticPair(in: dir)
        let pair = try CheckpointPair(base: try Checkpoint(path: basePath), finetuned: try Checkpoint(path: ftPath))
        let (adapter, summary) = try Extractor.extract(pair, options: ExtractOptions(target: target))
        #expect(Set(adapter.modules.map(\.name)) == ["model.layers.0.self_attn.q_proj", "model.layers.0.mlp.up_proj",
                                                     "model.layers.0.mlp.down_proj", "model.layers.0.conv"])
        #expect(Set(adapter.replacedTensors.map(\.target)) == ["model.embed_tokens.weight", "model.layers.0.norm.weight"])
        #expect(summary.unchanged == 1 && summary.biasChanges == 1)
        #expect(adapter.module(named: "model.layers.0.conv")?.kernel == [3, 3])
        let measured = try Self.mergedErrors(adapter, base: basePath, finetuned: ftPath, dir: dir)
        for line in summary.conversion.lines {
            let independent = try #require(measured[line.name])
            // The merge adds f32 rounding of W + BA (‖ΔW‖ is a few % of ‖W‖ here).
            #expect(abs(independent - line.relativeError) <= 1e-4, "\(line.name): reported \(line.relativeError), merged \(independent)")
            if let e = target.maxRelativeError { #expect(independent <= e + 1e-4, "\(line.name): \(independent) > \(e)") }
            if target.maxRelativeError == nil { #expect(line.ranks == [target.maxRank], "\(line.name)") }
        }
        // A rank-3 change plus small noise: rank 3 leaves only the noise.
        if target.maxRank == 3 { #expect(summary.conversion.worstError < 0.05) }
    }

    @Test(arguments: [ExtractOptions.Form.tensorTrain, .tucker(.depth), .tucker(.module)])
    func tensorFormsMeetTheBoundAgainstTheDenseDelta(form: ExtractOptions.Form) throws {
        let dir = TemporaryDirectory()
        let (basePath, ftPath) = Self.syntheticPair(in: dir)
        let pair = try CheckpointPair(base: try Checkpoint(path: basePath), finetuned: try Checkpoint(path: ftPath))
        for e in [0.05, 0.2] {
            let (adapter, summary) = try Extractor.extract(pair, options: ExtractOptions(target: ConversionTarget(maxRelativeError: e), form: form))
            #expect(!summary.conversion.lines.isEmpty)
            for line in summary.conversion.lines { #expect(line.relativeError <= e, "\(line.name): \(line.relativeError)") }
            let measured = try Self.mergedErrors(adapter, base: basePath, finetuned: ftPath, dir: dir)
            for line in summary.conversion.lines {
                let members = line.members.isEmpty ? [line.name] : line.members
                // Per-member merged errors combine to the group's (norms from the pair).
                if members.count == 1, let m = measured[members[0]] {
                    #expect(abs(m - line.relativeError) <= 1e-4, "\(line.name)")
                }
            }
        }
    }

    /// The committed real pair: layer 0's query and value of a full fine-tune of all-MiniLM-L6-v2.
    @Test(arguments: [8, 32, 128])
    func realPairNoWorseThanMergekit(rank: Int) throws {
        let dir = TemporaryDirectory()
        let base = Fixtures.path("extract/minilm-layer0/base"), ft = Fixtures.path("extract/minilm-layer0/finetuned")
        let pair = try CheckpointPair(base: try Checkpoint(path: base), finetuned: try Checkpoint(path: ft))
        let (adapter, summary) = try Extractor.extract(pair, options: ExtractOptions(target: ConversionTarget(maxRank: rank)))
        #expect(adapter.modules.count == 2 && summary.biasChanges == 2)
        try Self.expectNoWorseThanMergekit(summary, rank: rank, measured: try Self.mergedErrors(adapter, base: base, finetuned: ft, dir: dir), tolerance: 1e-5)
    }

    /// Each module's reported error is no worse than mergekit-extract-lora's at `rank` and agrees
    /// with `measured` (the merged checkpoint's) within `tolerance`.
    static func expectNoWorseThanMergekit(_ summary: ExtractSummary, rank: Int, measured: [String: Double], tolerance: Double) throws {
        let reference = try mergekitErrors(rank: rank)
        for line in summary.conversion.lines {
            let theirs = try #require(reference[line.name], "mergekit error for \(line.name)")
            #expect(line.relativeError <= theirs * (1 + 1e-4) + 1e-7, "\(line.name) r\(rank): ours \(line.relativeError), mergekit \(theirs)")
            #expect(abs(try #require(measured[line.name]) - line.relativeError) <= tolerance, "\(line.name)")
        }
    }

    @Test(arguments: [0.05, 0.2])
    func realPairMeetsErrorBounds(e: Double) throws {
        let dir = TemporaryDirectory()
        let base = Fixtures.path("extract/minilm-layer0/base"), ft = Fixtures.path("extract/minilm-layer0/finetuned")
        let pair = try CheckpointPair(base: try Checkpoint(path: base), finetuned: try Checkpoint(path: ft))
        let (adapter, summary) = try Extractor.extract(pair, options: ExtractOptions(target: ConversionTarget(maxRelativeError: e)))
        let measured = try Self.mergedErrors(adapter, base: base, finetuned: ft, dir: dir)
        for line in summary.conversion.lines {
            #expect(try #require(measured[line.name]) <= e + 1e-5, "\(line.name)")
            // The smallest rank that meets the bound: one less would not.
            let rank = line.ranks[0]
            #expect(rank > 1)
            let (_, fewer) = try Extractor.extract(pair, options: ExtractOptions(target: ConversionTarget(maxRank: rank - 1), modules: line.name))
            #expect(try #require(fewer.conversion.lines.first).relativeError > e, "\(line.name): rank \(rank - 1) meets \(e) too")
        }
    }

    /// The whole fine-tune (36 modules), when `TLORA_MINILM_FINETUNED` and `TLORA_MINILM_BASE` are set
    /// (`make test` sets both when Python has torch and the base package); reported as skipped otherwise.
    @Test(.enabled(if: Fixtures.miniLMFinetuned != nil && Fixtures.miniLMBase != nil,
                   "needs TLORA_MINILM_FINETUNED (scripts/minilm-finetuned.sh) and TLORA_MINILM_BASE"))
    func wholeFineTune() throws {
        let ft = try #require(Fixtures.miniLMFinetuned), base = try #require(Fixtures.miniLMBase)
        let dir = TemporaryDirectory()
        let pair = try CheckpointPair(base: try Checkpoint(path: base), finetuned: try Checkpoint(path: ft))
        for rank in [8, 32, 128] {
            let (adapter, summary) = try Extractor.extract(pair, options: ExtractOptions(target: ConversionTarget(maxRank: rank)))
            #expect(adapter.modules.count == 36)
            try Self.expectNoWorseThanMergekit(summary, rank: rank, measured: try Self.mergedErrors(adapter, base: base, finetuned: ft, dir: dir), tolerance: 1e-4)
        }
        for e in [0.05, 0.2] {
            let (adapter, summary) = try Extractor.extract(pair, options: ExtractOptions(target: ConversionTarget(maxRelativeError: e)))
            let measured = try Self.mergedErrors(adapter, base: base, finetuned: ft, dir: dir)
            for line in summary.conversion.lines { #expect(try #require(measured[line.name]) <= e + 1e-4, "\(line.name)") }
        }
    }

    static func mergekitErrors(rank: Int) throws -> [String: Double] {
        let json = try JSONParser.parse(readWholeFile(path: Fixtures.reference("minilm-finetune.mergekit.json")))
        guard let errors = json["errors"]?[String(rank)]?.objectValue else { return [:] }
        var out: [String: Double] = [:]
        for (k, v) in errors.pairs { out[k] = v.doubleValue }
        return out
    }

    @Test func hostilePairsAreRefused() throws {
        let dir = TemporaryDirectory()
        let (basePath, ftPath) = Self.syntheticPair(in: dir)
        // Different architectures.
        #expect {
            try CheckpointPair(base: try Checkpoint(path: Fixtures.model("tiny-llama")), finetuned: try Checkpoint(path: Fixtures.model("tiny-gpt2")))
        } throws: { ($0 as? ConvertError)?.code == .differentArchitecture }
        // Same names, other shapes.
        let otherDir = TemporaryDirectory()
        let other = Self.syntheticPair(in: otherDir, seed: 5)
        var reshaped = try Checkpoint(path: other.finetuned).shards[0].entries.map { e -> (String, StoredTensor) in
            let t = try Checkpoint(path: other.finetuned).shards[0].tensor(e.name)
            return (e.name, e.name.contains("up_proj") ? t.reshaped([32, 48]) : t)
        }
        let reshapedDir = dir.file("reshaped")
        _ = makeDirectory(reshapedDir)
        try SafetensorsWriter.write(reshaped, to: reshapedDir + "/model.safetensors", overwrite: true)
        reshaped.removeAll()
        #expect { try CheckpointPair(base: try Checkpoint(path: basePath), finetuned: try Checkpoint(path: reshapedDir)) } throws: { e in
            (e as? ConvertError)?.code == .differentArchitecture && "\(e)".contains("up_proj") && "\(e)".contains("32×48")
        }
        // NaN in the fine-tune.
        let nanDir = dir.file("nan")
        _ = makeDirectory(nanDir)
        let src = try Checkpoint(path: ftPath).shards[0]
        try SafetensorsWriter.write(try src.entries.map { e in
            var v = try src.tensor(e.name).doubles()
            if e.name.contains("q_proj") && e.name.contains("layers.0") && e.name.hasSuffix("weight") { v[3] = .nan }
            return (e.name, StoredTensor(v, shape: e.shape, dtype: .f32))
        }, to: nanDir + "/model.safetensors", overwrite: true)
        let nanPair = try CheckpointPair(base: try Checkpoint(path: basePath), finetuned: try Checkpoint(path: nanDir))
        #expect { try Extractor.extract(nanPair, options: ExtractOptions(target: ConversionTarget(maxRank: 2))) } throws: { e in
            (e as? ConvertError)?.code == .nonFiniteValues && "\(e)".contains(nanDir) && "\(e)".contains("NaN")
        }
        // Nothing changed.
        let same = try CheckpointPair(base: try Checkpoint(path: basePath), finetuned: try Checkpoint(path: basePath))
        #expect { try Extractor.extract(same, options: ExtractOptions(target: ConversionTarget(maxRank: 2))) } throws: { e in
            (e as? ConvertError)?.code == .nothingToExtract && "\(e)".contains("nothing to extract")
        }
    }

    @Test func peftOutputRoundTrips() throws {
        let dir = TemporaryDirectory()
        let (basePath, ftPath) = Self.syntheticPair(in: dir)
        let pair = try CheckpointPair(base: try Checkpoint(path: basePath), finetuned: try Checkpoint(path: ftPath))
        let (adapter, _) = try Extractor.extract(pair, options: ExtractOptions(target: ConversionTarget(maxRelativeError: 0.1)))
        #expect(adapter.modules.contains { !$0.kernel.isEmpty })  // the conv kernel too, in PEFT's conv layout
        try PEFTWriter.write(adapter, to: dir.file("peft"), overwrite: false)
        let back = try PEFTReader.read(directory: dir.file("peft"))
        // PEFT's state dict is in key order: match modules by name.
        #expect(back.modules.map(\.name).sorted() == adapter.modules.map(\.name).sorted())
        for y in adapter.modules {
            let x = try #require(back.module(named: y.name))
            // lora_bias gives every layer a bias: zeros where none changed.
            let zeros = StoredTensor([Float](repeating: 0, count: y.outFeatures), shape: [y.outFeatures])
            #expect(x.scale == 1 && x.update == y.update && x.kernel == y.kernel && x.biasDelta == (y.biasDelta ?? zeros), "\(x.name)")
        }
        let config = try JSONParser.parse(readWholeFile(path: dir.file("peft/adapter_config.json")))
        #expect(config["lora_bias"]?.boolValue == true)
        // alpha = rank for every module (rank_pattern and alpha_pattern agree).
        let r = config["r"]?.intValue, alpha = config["lora_alpha"]?.doubleValue
        #expect(r.map(Double.init) == alpha)
        for (k, v) in config["rank_pattern"]?.objectValue?.pairs ?? [] { #expect(config["alpha_pattern"]?[k]?.doubleValue == v.intValue.map(Double.init)) }
    }
}
