import Testing
import TLoRAInterop
import TLoRAIO
import TLoRAMerge
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// Merges of kohya, sd-scripts, LyCORIS and diffusers-layout adapters into diffusers pipelines and
/// single files, against what diffusers' `load_lora_weights` + `fuse_lora` and LyCORIS's forward pass
/// give (Fixtures/README.md, "Diffusion").
@Suite struct DiffusionMergeTests {
    static func diffusion(_ name: String) -> String { Fixtures.path("diffusion/" + name) }

    /// Fixture → base pipeline.
    static let fixtures: [(name: String, base: String)] = [
        ("sd-peft", "sd-tiny"), ("sd-kohya", "sd-tiny"), ("sd-attnproc", "sd-tiny"), ("sd-lora-compat", "sd-tiny"),
        ("sd-sdscripts-locon", "sd-tiny"), ("sd-sdscripts-locon-resized", "sd-tiny"), ("sdxl-kohya", "sdxl-tiny"), ("sdxl-kohya-sgm", "sdxl-tiny"),
        ("sd-lycoris-locon-tucker", "sd-tiny"), ("sd-lycoris-loha-tucker", "sd-tiny"), ("sd-lycoris-lokr", "sd-tiny"),
        ("sd-lycoris-locon-dora", "sd-tiny"), ("sd-lycoris-full", "sd-tiny"),
    ]

    static func adapterPath(_ name: String) -> String {
        let dir = diffusion("loras/" + name)
        return pathKind(dir) == .directory ? dir : dir + ".safetensors"
    }

    /// Reads, binds and merges; returns the merged base.
    static func merge(_ name: String, base: String, into out: String) throws -> ModelBase {
        let path = adapterPath(name)
        var adapter = try DiffusionAdapter.read(path: path)
        let modelBase = try ModelBase(path: base)
        let binding = try DiffusionBinding.bind(&adapter, to: modelBase, adapterPath: path)
        #expect(binding.skipped.isEmpty)
        _ = try Merger.merge(adapter: adapter, adapterPath: path, base: modelBase, rows: binding.targets.compactMapValues(\.rows), output: out)
        return try ModelBase(path: out)
    }

    /// Ours equals the reference: f32 within 1e-5 relative (Frobenius, per tensor); f16/bf16 within 1
    /// ulp of the reference (computed in f32 by the tool) rounded once to the base's dtype.
    static func check(_ ours: UnsafeRawBufferPointer, dtype: SafetensorsDType, reference: [Float], name: String) {
        switch dtype {
        case .f32:
            let a = ElementConversion.doubles(from: ours, dtype: .f32), b = reference.map(Double.init)
            #expect(Tolerance.relativeError(a, b) <= 1e-5, "\(name): \(Tolerance.relativeError(a, b))")
        case .f16, .bf16:
            // Safe: both are floating dtypes.
            let rounded = ElementConversion.bytes(from: reference, as: dtype.floatType!)
            let ulps = rounded.withUnsafeBytes { MergeFixtureTests.bf16ULPs(ours, $0) }
            #expect(ulps <= 1, "\(name): \(ulps) ulp")
        default:
            Issue.record("\(name): unexpected dtype \(dtype)")
        }
    }

    /// Every tensor the reference lists matches; every other tensor of the base is byte-identical.
    static func compare(_ merged: ModelBase, base: ModelBase, reference: String, qualify: (String) -> String) throws {
        let ref = try SafetensorsFile(path: reference)
        var changed = Set<String>()
        for e in ref.entries where !e.name.hasPrefix("input.") && !e.name.hasPrefix("output.") {
            let name = qualify(e.name)
            changed.insert(name)
            guard let (c, tensor) = merged.locate(name), let (shard, ours) = merged.components[c].checkpoint.entry(tensor) else {
                Issue.record("merged base lacks \(name)")
                continue
            }
            #expect(ours.shape == e.shape, "\(name)")
            check(shard.bytes(of: ours), dtype: ours.dtype, reference: ElementConversion.floats(from: ref.bytes(of: e), dtype: .f32), name: name)
        }
        #expect(!changed.isEmpty)
        for (name, e) in base.tensors where !changed.contains(name) {
            // Safe: the merged base has every tensor of the base (checked by the locate above for the rest).
            guard let (c, tensor) = merged.locate(name), let (shard, ours) = merged.components[c].checkpoint.entry(tensor),
                  let (bc, btensor) = base.locate(name), let (bshard, _) = base.components[bc].checkpoint.entry(btensor) else {
                Issue.record("merged base lacks \(name)")
                continue
            }
            #expect(shard.bytes(of: ours).elementsEqual(bshard.bytes(of: e)), "\(name) should be unchanged")
        }
    }

    @Test(arguments: fixtures.map(\.name))
    func pipelineMergeEqualsTheToolsReference(name: String) throws {
        // Safe: `name` comes from `fixtures`.
        let baseName = Self.fixtures.first { $0.name == name }!.base
        let dir = TemporaryDirectory()
        let base = try ModelBase(path: Self.diffusion(baseName))
        let merged = try Self.merge(name, base: Self.diffusion(baseName), into: dir.file("merged"))
        #expect(merged.layout == .pipeline)
        #expect(merged.components.map(\.name) == base.components.map(\.name))
        try Self.compare(merged, base: base, reference: Fixtures.reference("diffusion/\(name).safetensors")) {
            $0.replacingOccurrences(of: "/", with: ".", maxReplacements: 1)
        }
        // Components the adapter does not touch are copied file for file.
        #expect(TestFiles.read(dir.file("merged/vae/diffusion_pytorch_model.safetensors")) == TestFiles.read(Self.diffusion(baseName) + "/vae/diffusion_pytorch_model.safetensors"))
        #expect(TestFiles.read(dir.file("merged/model_index.json")) == TestFiles.read(Self.diffusion(baseName) + "/model_index.json"))
        #expect(TestFiles.read(dir.file("merged/tokenizer/tokenizer.json")) == TestFiles.read(Self.diffusion(baseName) + "/tokenizer/tokenizer.json"))
    }

    /// The sharded f16 SDXL UNet keeps its shard names, header order and index.
    @Test func shardedComponentKeepsItsLayout() throws {
        let dir = TemporaryDirectory()
        let base = try ModelBase(path: Self.diffusion("sdxl-tiny"))
        let merged = try Self.merge("sdxl-kohya", base: Self.diffusion("sdxl-tiny"), into: dir.file("merged"))
        let (a, b) = (try #require(merged.component(named: "unet")).checkpoint, try #require(base.component(named: "unet")).checkpoint)
        #expect(a.shardNames == b.shardNames && a.shardNames.count == 3)
        for (x, y) in zip(a.shards, b.shards) { #expect(x.fileBytes[0..<x.dataStart].elementsEqual(y.fileBytes[0..<y.dataStart])) }
        let index = "/unet/diffusion_pytorch_model.safetensors.index.json"
        #expect(TestFiles.read(dir.file("merged") + index) == TestFiles.read(Self.diffusion("sdxl-tiny") + index))
    }

    /// Single files come out as single files, equal to the fused pipeline converted by diffusers' own
    /// script (for SDXL, the second text encoder's q/k/v LoRAs land in rows of OpenCLIP's fused
    /// `in_proj_weight`).
    @Test(arguments: [("sd-kohya", "sd-tiny"), ("sdxl-kohya-sgm", "sdxl-tiny")])
    func singleFileMergeEqualsTheConvertedReference(name: String, base baseName: String) throws {
        let dir = TemporaryDirectory()
        let base = try ModelBase(path: Self.diffusion(baseName + ".safetensors"))
        let merged = try Self.merge(name, base: Self.diffusion(baseName + ".safetensors"), into: dir.file("merged.safetensors"))
        #expect(merged.layout == .singleFile)
        try Self.compare(merged, base: base, reference: Fixtures.reference("diffusion/\(name).single.safetensors")) { $0 }
        #expect(merged.components[0].checkpoint.shards[0].metadata.contains { $0.key == SafetensorsWriter.markerKey })
    }

    /// A module whose key names nothing in the base stops the merge before anything is written, naming
    /// the key; skipping merges the rest and reports it.
    @Test func unmatchedKeysAreRefusedOrSkipped() throws {
        let path = Self.adapterPath("sd-kohya")
        var adapter = try DiffusionAdapter.read(path: path)
        let sdxl = try ModelBase(path: Self.diffusion("sdxl-tiny"))
        do {
            _ = try DiffusionBinding.bind(&adapter, to: sdxl, adapterPath: path)
            Issue.record("an SD 1.x file bound to an SDXL base")
        } catch let e as InteropError {
            #expect(e.path == path)
            #expect(e.code == .unmatchedNames)
            #expect(e.problem.contains("lora_unet_down_blocks_0_attentions_0_proj_in"))
            #expect(!e.problem.contains("\n"))
        }
        var sd = try DiffusionAdapter.read(path: path)
        sd.modules[0].attributes["diffusion.flat"] = "down_blocks_0_nothing"
        let binding = try DiffusionBinding.bind(&sd, to: try ModelBase(path: Self.diffusion("sd-tiny")), adapterPath: path, skipUnmatched: true)
        #expect(binding.skipped.count == 1)
        #expect(sd.modules.count == 288)
    }
}

extension String {
    /// `self` with the first `maxReplacements` occurrences of `target` replaced.
    func replacingOccurrences(of target: String, with replacement: String, maxReplacements: Int) -> String {
        var out = self
        for _ in 0..<maxReplacements {
            guard let r = out.firstRange(of: target) else { break }
            out.replaceSubrange(r, with: replacement)
        }
        return out
    }
}
