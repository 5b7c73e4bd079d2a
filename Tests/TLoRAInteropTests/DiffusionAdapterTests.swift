import Testing
@testable import TLoRAInterop
import TLoRAIO
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// Reading and writing kohya, LyCORIS and diffusers-layout files (Fixtures/README.md, "Diffusion").
@Suite struct DiffusionAdapterTests {
    static func lora(_ name: String) -> String {
        let dir = Fixtures.path("diffusion/loras/" + name)
        return pathKind(dir) == .directory ? dir : dir + ".safetensors"
    }

    static let kohyaFiles = ["sd-kohya", "sd-sdscripts-locon", "sd-sdscripts-locon-resized", "sdxl-kohya", "sdxl-kohya-sgm",
                             "sd-lycoris-locon-tucker", "sd-lycoris-loha-tucker", "sd-lycoris-lokr", "sd-lycoris-locon-dora", "sd-lycoris-full"]

    @Test func formsScalesAndMetadata() throws {
        let kohya = try DiffusionAdapter.read(path: Self.lora("sd-kohya"))
        #expect(kohya.metadata.sourceFormat == "kohya")
        // diffusers' convert_state_dict_to_kohya writes alpha as int64 (= the rank): scale 1.
        #expect(kohya.modules.allSatisfy { $0.scale == 1 })
        let conv = try #require(kohya.module(named: "lora_unet_down_blocks_0_resnets_0_conv1"))
        #expect(conv.kernel == [3, 3] && conv.targetShape == [4, 4, 3, 3])
        let sdScripts = try DiffusionAdapter.read(path: Self.lora("sd-sdscripts-locon"))
        #expect(sdScripts.metadata["ss_network_dim"] == "2" && sdScripts.metadata["modelspec.architecture"] == "stable-diffusion-v1/lora")
        #expect(sdScripts.module(named: "lora_unet_down_blocks_0_resnets_0_conv1")?.scale == 2)  // conv_alpha 4 / conv_dim 2
        #expect(sdScripts.module(named: "lora_te_encoder_layers_0_mlp_fc1")?.scale == 0.5)      // alpha 1 / dim 2
        let tucker = try DiffusionAdapter.read(path: Self.lora("sd-lycoris-locon-tucker"))
        guard case .convTucker = try #require(tucker.module(named: "lora_unet_conv_in")).update else {
            Issue.record("lora_mid is not read as a Tucker conv")
            return
        }
        let lokr = try DiffusionAdapter.read(path: Self.lora("sd-lycoris-lokr"))
        #expect(lokr.module(named: "lora_te_encoder_layers_0_self_attn_k_proj")?.scale == 1)  // two full factors: α ignored
        #expect(lokr.module(named: "lora_te_encoder_layers_0_mlp_fc1")?.scale == 0.5)          // w2 decomposed: α / r
        let dora = try DiffusionAdapter.read(path: Self.lora("sd-lycoris-locon-dora"))
        let d = try #require(dora.module(named: "lora_unet_conv_in"))
        #expect(d.doraAxis == .out && d.doraMagnitude?.shape == [4] && d.doraEpsilon == Double(Float.ulpOfOne))
        let full = try DiffusionAdapter.read(path: Self.lora("sd-lycoris-full"))
        #expect(full.module(named: "lora_unet_conv_in")?.biasDelta?.shape == [4])
        let peft = try DiffusionAdapter.read(path: Self.lora("sd-peft"))
        #expect(peft.metadata.sourceFormat == "diffusers")
        #expect(peft.module(named: "unet.down_blocks.0.resnets.0.conv1")?.target == "unet.down_blocks.0.resnets.0.conv1.weight")
        let processors = try DiffusionAdapter.read(path: Self.lora("sd-attnproc"))
        #expect(processors.module(named: "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0") != nil)
        let compat = try DiffusionAdapter.read(path: Self.lora("sd-lora-compat"))
        #expect(compat.module(named: "text_encoder.encoder.layers.0.self_attn.q_proj") != nil)
    }

    /// Every kohya/LyCORIS fixture written back is the same tensors, bit for bit (alpha may change dtype:
    /// an int64 alpha comes back as f32), with the file's ss_* and modelspec.* metadata.
    @Test(arguments: kohyaFiles)
    func kohyaExportRoundTripsBitForBit(name: String) throws {
        let path = Self.lora(name)
        let adapter = try DiffusionAdapter.read(path: path)
        let dir = TemporaryDirectory()
        let out = dir.file("out.safetensors")
        let keys = try DiffusionExport.kohyaKeys(adapter, names: DiffusionExport.names(adapter, base: nil), renamed: false, path: out)
        try DiffusionExport.writeKohya(adapter, keys: keys, to: out, overwrite: false)
        let a = try SafetensorsFile(path: path), b = try SafetensorsFile(path: out)
        #expect(Set(a.tensorNames) == Set(b.tensorNames))
        for e in a.entries {
            let f = try #require(b.entry(e.name))
            #expect(f.shape == e.shape, "\(e.name)")
            if e.name.hasSuffix(".alpha") {
                #expect(try DiffusionAdapter.scalar(e, in: a, module: "") == DiffusionAdapter.scalar(f, in: b, module: ""), "\(e.name)")
            } else {
                #expect(f.dtype == e.dtype && a.bytes(of: e).elementsEqual(b.bytes(of: f)), "\(e.name)")
            }
        }
        for (k, v) in a.metadata where k.hasPrefix("ss_") || k.hasPrefix("modelspec.") {
            #expect(b.metadata.contains { $0.key == k && $0.value == v }, "\(k)")
        }
    }

    /// kohya names for the other layout: the SGM-named SDXL file against the pipeline comes out with the
    /// pipeline's diffusers names — the same keys diffusers' own conversion gave `sdxl-kohya` — and the
    /// diffusers-named one against the single file with the SGM names of `sdxl-kohya-sgm`.
    @Test func kohyaNamesFollowTheBase() throws {
        for (source, base, expected) in [("sdxl-kohya-sgm", "sdxl-tiny", "sdxl-kohya"), ("sdxl-kohya", "sdxl-tiny.safetensors", "sdxl-kohya-sgm")] {
            var adapter = try DiffusionAdapter.read(path: Self.lora(source))
            let b = try ModelBase(path: Fixtures.path("diffusion/" + base))
            let rows = try DiffusionBinding.bind(&adapter, to: b, adapterPath: source).targets.compactMapValues(\.rows)
            let keys = try DiffusionExport.kohyaKeys(adapter, names: DiffusionExport.names(adapter, base: b, rows: rows), renamed: true, path: "out")
            let want = Set(try SafetensorsFile(path: Self.lora(expected)).tensorNames.compactMap { LyCORISModule.split($0)?.module })
            let differ = Set(keys).symmetricDifference(want)
            #expect(differ.isEmpty, "\(source) → \(base): \(differ.sorted().prefix(4))")
        }
    }

    /// The diffusers layout from a kohya file and a pipeline: the names and factors diffusers' own
    /// PEFT-layout file has for the same LoRA.
    @Test func diffusersExportMatchesDiffusersOwnFile() throws {
        var adapter = try DiffusionAdapter.read(path: Self.lora("sd-kohya"))
        let b = try ModelBase(path: Fixtures.path("diffusion/sd-tiny"))
        _ = try DiffusionBinding.bind(&adapter, to: b, adapterPath: "sd-kohya")
        let dir = TemporaryDirectory()
        try DiffusionExport.writeDiffusers(adapter, names: DiffusionExport.names(adapter, base: b), to: dir.file("out"), overwrite: false)
        let ours = try SafetensorsFile(path: dir.file("out/" + DiffusionAdapter.diffusersFileName))
        let theirs = try SafetensorsFile(path: Self.lora("sd-peft") + "/" + DiffusionAdapter.diffusersFileName)
        #expect(Set(ours.tensorNames) == Set(theirs.tensorNames))
        for e in theirs.entries {
            let f = try #require(ours.entry(e.name))
            #expect(f.shape == e.shape && theirs.bytes(of: e).elementsEqual(ours.bytes(of: f)), "\(e.name)")
        }
        let back = try DiffusionAdapter.read(path: dir.file("out"))
        #expect(back.modules.count == adapter.modules.count && back.modules.allSatisfy { $0.scale == 1 })
    }

    /// Hostile files: one line naming the file and the module for each inconsistency.
    @Test func inconsistentFilesAreRefused() throws {
        let dir = TemporaryDirectory()
        func write(_ tensors: [(String, StoredTensor)]) throws -> String {
            let path = dir.file("bad-\(UInt32.random(in: 0...UInt32.max)).safetensors")
            try SafetensorsWriter.write(tensors.map { ($0.0, $0.1) }, to: path, overwrite: false)
            return path
        }
        func matrix(_ r: Int, _ c: Int, _ v: Float = 0.5) -> StoredTensor { StoredTensor([Float](repeating: v, count: r * c), shape: [r, c]) }
        let m = "lora_unet_down_blocks_0_attentions_0_proj_in"
        let cases: [([(String, StoredTensor)], String)] = [
            ([("\(m).lora_down.weight", matrix(2, 4)), ("\(m).lora_up.weight", matrix(4, 3))], "rank"),
            ([("\(m).lora_down.weight", matrix(2, 4))], "lora_up"),
            ([("\(m).lora_down.weight", matrix(2, 4)), ("\(m).lora_up.weight", matrix(4, 2)), ("\(m).alpha", matrix(1, 2))], "alpha"),
            ([("\(m).lora_down.weight", matrix(2, 4)), ("\(m).lora_up.weight", matrix(4, 2)), ("\(m).hada_w1_a", matrix(4, 2))], "mixes"),
            ([("\(m).lora_down.weight", matrix(2, 4)), ("\(m).lora_up.weight", matrix(4, 2)), ("\(m).oft_blocks", matrix(2, 2))], "OFT"),
            ([("\(m).hada_w1_a", matrix(4, 2)), ("\(m).hada_w1_b", matrix(2, 4)), ("\(m).hada_w2_a", matrix(4, 3)), ("\(m).hada_w2_b", matrix(2, 4))], "LoHa"),
            ([("\(m).lokr_w1", matrix(2, 2)), ("\(m).lokr_w2_a", matrix(2, 2)), ("\(m).lokr_w2_b", matrix(3, 2))], "chain"),
            ([("\(m).lora_down.weight", matrix(2, 4)), ("\(m).lora_up.weight", matrix(4, 2)), ("\(m).dora_scale", matrix(3, 1))], "dora_scale"),
            ([("\(m).diff", matrix(4, 4)), ("\(m).diff_b", matrix(3, 1))], "diff_b"),
            ([("\(m).lora_down.weight", matrix(2, 4)), ("\(m).lora_up.weight", matrix(4, 2)), ("\(m).alpha", StoredTensor([Float.nan], shape: []))], "alpha"),
        ]
        for (tensors, word) in cases {
            let path = try write(tensors)
            do {
                _ = try DiffusionAdapter.read(path: path)
                Issue.record("accepted a file with a \(word) problem")
            } catch let e as InteropError {
                #expect(e.path == path)
                #expect(e.problem.contains(word) || e.problem.contains(m), "\(e)")
                #expect(!e.description.contains("\n"))
            }
        }
        // Names of no known layout are not a diffusion adapter at all.
        #expect(DiffusionAdapter.layout(of: ["model.layers.0.weight"]) == nil)
        #expect(DiffusionAdapter.layout(of: ["lora_unet_x.lora_down.weight", "other.weight"]) == nil)
    }
}
