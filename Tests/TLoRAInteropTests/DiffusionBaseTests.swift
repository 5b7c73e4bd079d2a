import Testing
@testable import TLoRAInterop
import TLoRAIO
import _TLoRATestSupport

/// Diffusion bases as diffusers writes them (Fixtures/diffusion: `save_pretrained` pipelines and the
/// single files diffusers' own conversion scripts made from them).
@Suite struct DiffusionBaseTests {
    static func diffusion(_ name: String) -> String { Fixtures.path("diffusion/" + name) }

    @Test func pipelineComponents() throws {
        let sd = try ModelBase(path: Self.diffusion("sd-tiny"))
        #expect(sd.layout == .pipeline)
        #expect(sd.components.map(\.name).sorted() == ["text_encoder", "unet", "vae"])
        #expect(sd.component(named: "unet")?.className == "UNet2DConditionModel")
        let xl = try ModelBase(path: Self.diffusion("sdxl-tiny"))
        #expect(xl.components.map(\.name).sorted() == ["text_encoder", "text_encoder_2", "unet", "vae"])
        let unet = try #require(xl.component(named: "unet"))
        #expect(unet.checkpoint.shards.count == 3)
        #expect(unet.checkpoint.indexFileName == "diffusion_pytorch_model.safetensors.index.json")
        let q = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"
        #expect(xl.entry(q)?.dtype == .f16)
        #expect(xl.locate(q)?.tensor == "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight")
        #expect(xl.locate("unet.nothing.weight") == nil)
        #expect(xl.locate("scheduler.x") == nil)
    }

    @Test func singleFileIsRecognized() throws {
        let sd = try ModelBase(path: Self.diffusion("sd-tiny.safetensors"))
        #expect(sd.layout == .singleFile)
        let llama = try ModelBase(path: Fixtures.model("tiny-llama") + "/model.safetensors")
        #expect(llama.layout == .checkpoint)
        #expect(try ModelBase(path: Fixtures.model("tiny-llama")).layout == .checkpoint)
    }

    /// The structural UNet map sends every diffusers weight of both pipelines to exactly the name
    /// diffusers' own conversion script gave it in the single file, and back.
    @Test(arguments: ["sd-tiny", "sdxl-tiny"])
    func unetNamesMatchTheConversionScript(name: String) throws {
        let pipeline = try ModelBase(path: Self.diffusion(name))
        let single = try ModelBase(path: Self.diffusion(name + ".safetensors"))
        let prefix = "model.diffusion_model."
        let sgmNames = single.components[0].checkpoint.tensorNames.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        let diffusersNames = try #require(pipeline.component(named: "unet")).checkpoint.tensorNames
        let forward = try #require(UNetNames(diffusersNames: diffusersNames))
        let backward = try #require(UNetNames(sgmNames: sgmNames))
        #expect(Set(diffusersNames.compactMap { forward.sgm(fromDiffusers: $0) }) == Set(sgmNames))
        #expect(diffusersNames.allSatisfy { forward.sgm(fromDiffusers: $0) != nil })
        for d in diffusersNames {
            let s = try #require(forward.sgm(fromDiffusers: d))
            #expect(backward.diffusers(fromSGM: s) == d, "\(d) → \(s)")
        }
    }

    /// Every weight of the pipeline's UNet and CLIP text encoder resolves, by the diffusers name and
    /// by its flattened kohya form, to the single file's tensor of the same values.
    @Test func pipelineNamesResolveInTheSingleFile() throws {
        let pipeline = try ModelBase(path: Self.diffusion("sdxl-tiny"))
        let single = try ModelBase(path: Self.diffusion("sdxl-tiny.safetensors"))
        let index = single.nameIndex()
        for c in ["unet", "text_encoder", "text_encoder_2"] {
            let checkpoint = try #require(pipeline.component(named: c)).checkpoint
            for name in checkpoint.tensorNames where name.hasSuffix(".weight") && checkpoint.entry(name)!.entry.shape.count >= 2 {
                let path = String(name.dropLast(".weight".count))
                if c != "unet" && (path.contains("embedding") || path.contains("text_projection")) { continue }
                guard case .found(let target) = index.lookup(role: c, flattened: ModuleNameIndex.flatten(path)) else {
                    Issue.record("\(c).\(path) does not resolve: \(index.lookup(role: c, flattened: ModuleNameIndex.flatten(path)))")
                    continue
                }
                #expect(index.lookup(role: c, path: path) == .found(target))
                let (shard, entry) = checkpoint.entry(name)!
                let (singleShard, singleEntry) = single.components[0].checkpoint.entry(target.tensor)!
                let rows = target.rows ?? 0..<singleEntry.shape[0]
                let rowBytes = singleEntry.dataRange.count / singleEntry.shape[0]
                let slice = singleShard.bytes(of: singleEntry)[(rows.lowerBound * rowBytes)..<(rows.upperBound * rowBytes)]
                #expect(slice.elementsEqual(shard.bytes(of: entry)), "\(c).\(path) → \(target)")
            }
        }
    }

    /// The other direction: SGM names and kohya's flattened forms of them find the pipeline's tensors.
    @Test func sgmNamesResolveInThePipeline() throws {
        let index = try ModelBase(path: Self.diffusion("sdxl-tiny")).nameIndex()
        #expect(index.lookup(role: "unet", flattened: "input_blocks_4_1_transformer_blocks_0_attn1_to_q")
                == .found(BaseTarget(tensor: "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight")))
        #expect(index.lookup(role: "unet", flattened: "output_blocks_2_2_conv")
                == .found(BaseTarget(tensor: "unet.up_blocks.0.upsamplers.0.conv.weight")))
        #expect(index.lookup(role: "unet", flattened: "input_blocks_1_0_in_layers_2")
                == .found(BaseTarget(tensor: "unet.down_blocks.0.resnets.0.conv1.weight")))
        #expect(index.lookup(role: "text_encoder", flattened: "text_model_encoder_layers_0_self_attn_q_proj")
                == .found(BaseTarget(tensor: "text_encoder.encoder.layers.0.self_attn.q_proj.weight")))
        #expect(index.lookup(role: "unet", flattened: "down_blocks_0_attentions_0_proj_in") == .missing)
    }

    @Test func ambiguousFlatNamesAreNotGuessed() {
        var index = ModuleNameIndex()
        index.add(role: "", path: "a.b_c", target: BaseTarget(tensor: "a.b_c.weight"))
        index.add(role: "", path: "a_b.c", target: BaseTarget(tensor: "a_b.c.weight"))
        guard case .ambiguous(let targets) = index.lookup(role: "", flattened: "a_b_c") else {
            Issue.record("expected an ambiguity")
            return
        }
        #expect(targets.count == 2)
        #expect(index.lookup(role: "", path: "a.b_c") == .found(BaseTarget(tensor: "a.b_c.weight")))
    }

    @Test func pipelineWithoutWeightsIsRefused() throws {
        let dir = TemporaryDirectory()
        let root = dir.file("p")
        makeDirectory(root)
        TestFiles.write(root + "/model_index.json", Array(#"{"_class_name": "X", "unet": ["diffusers", "UNet2DConditionModel"]}"#.utf8))
        #expect(throws: InteropError.self) { try ModelBase(path: root) }
        TestFiles.write(root + "/model_index.json", Array(#"{"_class_name": "X", "../x": ["diffusers", "UNet2DConditionModel"]}"#.utf8))
        #expect(throws: InteropError.self) { try ModelBase(path: root) }
    }
}
