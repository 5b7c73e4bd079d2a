/// The correspondence between a diffusers `UNet2DConditionModel`'s module names
/// (`down_blocks.1.attentions.0.proj_in`) and the original Stable Diffusion / SGM names of the same
/// layers (`input_blocks.4.1.proj_in`), which single-file checkpoints and sd-scripts' SDXL LoRAs use.
///
/// Derived from the structure the names themselves show, not from a hard-coded SD 1.x or SDXL
/// table: SGM numbers `input_blocks` consecutively (block 0 is `conv_in`; each down block's resnets,
/// each followed by its attention in the same slot `.1`, then the downsampler in a slot of its own),
/// `middle_block` 0/1/2 (resnet, attention, resnet) and `output_blocks` likewise (each up block's
/// resnets with their attentions, the upsampler in the last resnet's slot after the attention). This
/// is the layout ComfyUI's `unet_to_diffusers` and diffusers' conversion scripts write out by hand.
struct UNetNames: Sendable {
    /// Whole-prefix pairs (`diffusers` → `sgm`, both ending in `.`) and whether the block is a resnet,
    /// whose inner layers are renamed too.
    private var blocks: [(diffusers: String, sgm: String, resnet: Bool)] = []

    static let basics: [(diffusers: String, sgm: String)] = [
        ("conv_in", "input_blocks.0.0"), ("time_embedding.linear_1", "time_embed.0"), ("time_embedding.linear_2", "time_embed.2"),
        ("add_embedding.linear_1", "label_emb.0.0"), ("add_embedding.linear_2", "label_emb.0.2"),
        ("conv_norm_out", "out.0"), ("conv_out", "out.2"),
    ]

    /// Resnet layers: diffusers → SGM.
    static let resnetLayers: [(diffusers: String, sgm: String)] = [
        ("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"), ("conv2", "out_layers.3"),
        ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"),
    ]

    /// From a diffusers UNet's tensor names (component-relative); nil when they are not a UNet's.
    init?(diffusersNames names: [String]) {
        func count(_ prefix: String) -> Int {
            // 1 + the largest index `i` of `<prefix>i.` (0 when there is none).
            var n = 0
            for name in names where name.hasPrefix(prefix) {
                let rest = name.dropFirst(prefix.count)
                if let dot = rest.firstIndex(of: "."), let i = Int(rest[..<dot]), i < 10_000 { n = max(n, i + 1) }
            }
            return n
        }
        func has(_ prefix: String) -> Bool { names.contains { $0.hasPrefix(prefix) } }
        let downs = count("down_blocks."), ups = count("up_blocks.")
        guard downs > 0, ups > 0, has("conv_in.") else { return nil }
        var n = 1
        for i in 0..<downs {
            for j in 0..<count("down_blocks.\(i).resnets.") {
                blocks.append(("down_blocks.\(i).resnets.\(j).", "input_blocks.\(n).0.", true))
                if has("down_blocks.\(i).attentions.\(j).") { blocks.append(("down_blocks.\(i).attentions.\(j).", "input_blocks.\(n).1.", false)) }
                n += 1
            }
            if has("down_blocks.\(i).downsamplers.0.") {
                blocks.append(("down_blocks.\(i).downsamplers.0.conv.", "input_blocks.\(n).0.op.", false))
                n += 1
            }
        }
        let midAttention = has("mid_block.attentions.0.")
        blocks.append(("mid_block.resnets.0.", "middle_block.0.", true))
        if midAttention { blocks.append(("mid_block.attentions.0.", "middle_block.1.", false)) }
        blocks.append(("mid_block.resnets.1.", midAttention ? "middle_block.2." : "middle_block.1.", true))
        n = 0
        for i in 0..<ups {
            let resnets = count("up_blocks.\(i).resnets.")
            for j in 0..<resnets {
                blocks.append(("up_blocks.\(i).resnets.\(j).", "output_blocks.\(n).0.", true))
                let attention = has("up_blocks.\(i).attentions.\(j).")
                if attention { blocks.append(("up_blocks.\(i).attentions.\(j).", "output_blocks.\(n).1.", false)) }
                if j == resnets - 1, has("up_blocks.\(i).upsamplers.0.") {
                    blocks.append(("up_blocks.\(i).upsamplers.0.", "output_blocks.\(n).\(attention ? 2 : 1).", false))
                }
                n += 1
            }
        }
    }

    /// From an SGM UNet's tensor names (without `model.diffusion_model.`); nil when they are not a UNet's.
    init?(sgmNames names: [String]) {
        // slot → which sub-blocks it has (0, 1, 2) and whether `.0` is a downsampler (`.0.op`).
        func slots(_ prefix: String) -> [(subs: Set<Int>, op: Bool, upsampler: Int?)] {
            var table: [Int: (subs: Set<Int>, op: Bool, upsampler: Int?)] = [:]
            for name in names where name.hasPrefix(prefix) {
                let parts = name.dropFirst(prefix.count).split(separator: ".", maxSplits: 3, omittingEmptySubsequences: false)
                guard parts.count >= 3, let n = Int(parts[0]), n < 10_000, let sub = Int(parts[1]), sub < 3 else { continue }
                var e = table[n] ?? ([], false, nil)
                e.subs.insert(sub)
                if sub == 0 && parts[2] == "op" { e.op = true }
                if sub > 0 && parts[2] == "conv" { e.upsampler = sub }
                table[n] = e
            }
            guard let last = table.keys.max() else { return [] }
            return (0...last).map { table[$0] ?? ([], false, nil) }
        }
        let inputs = slots("input_blocks."), outputs = slots("output_blocks.")
        guard inputs.count > 1, !outputs.isEmpty, inputs[0].subs == [0] else { return nil }
        var i = 0, j = 0
        for n in 1..<inputs.count {
            if inputs[n].op {
                blocks.append(("down_blocks.\(i).downsamplers.0.conv.", "input_blocks.\(n).0.op.", false))
                i += 1
                j = 0
                continue
            }
            blocks.append(("down_blocks.\(i).resnets.\(j).", "input_blocks.\(n).0.", true))
            if inputs[n].subs.contains(1) { blocks.append(("down_blocks.\(i).attentions.\(j).", "input_blocks.\(n).1.", false)) }
            j += 1
        }
        let middle = Set(names.compactMap { name -> Int? in
            guard name.hasPrefix("middle_block.") else { return nil }
            return name.dropFirst("middle_block.".count).split(separator: ".").first.flatMap { Int($0) }
        })
        blocks.append(("mid_block.resnets.0.", "middle_block.0.", true))
        if middle.contains(2) {
            blocks.append(("mid_block.attentions.0.", "middle_block.1.", false))
            blocks.append(("mid_block.resnets.1.", "middle_block.2.", true))
        } else if middle.contains(1) {
            blocks.append(("mid_block.resnets.1.", "middle_block.1.", true))
        }
        i = 0
        j = 0
        for n in 0..<outputs.count {
            blocks.append(("up_blocks.\(i).resnets.\(j).", "output_blocks.\(n).0.", true))
            // `.1` is the attention unless it is the upsampler (`.1.conv` of a block without attention).
            if outputs[n].subs.contains(1) && outputs[n].upsampler != 1 {
                blocks.append(("up_blocks.\(i).attentions.\(j).", "output_blocks.\(n).1.", false))
            }
            j += 1
            if let u = outputs[n].upsampler {
                blocks.append(("up_blocks.\(i).upsamplers.0.", "output_blocks.\(n).\(u).", false))
                i += 1
                j = 0
            }
        }
    }

    /// The SGM name of a diffusers module path (or tensor name); nil for names outside the map.
    func sgm(fromDiffusers name: String) -> String? {
        for (d, s) in Self.basics where name == d || name.hasPrefix(d + ".") { return s + name.dropFirst(d.count) }
        // A module path is its prefix without the trailing dot (`…downsamplers.0.conv`).
        let dotted = name + "."
        for b in blocks where dotted.hasPrefix(b.diffusers) {
            var rest = String(dotted.dropFirst(b.diffusers.count).dropLast())
            if b.resnet { rest = Self.rename(rest, Self.resnetLayers.map { ($0.diffusers, $0.sgm) }) }
            return rest.isEmpty ? String(b.sgm.dropLast()) : b.sgm + rest
        }
        return nil
    }

    /// The diffusers name of an SGM module path (or tensor name); nil for names outside the map.
    func diffusers(fromSGM name: String) -> String? {
        for (d, s) in Self.basics where name == s || name.hasPrefix(s + ".") { return d + name.dropFirst(s.count) }
        let dotted = name + "."
        for b in blocks where dotted.hasPrefix(b.sgm) {
            var rest = String(dotted.dropFirst(b.sgm.count).dropLast())
            if b.resnet { rest = Self.rename(rest, Self.resnetLayers.map { ($0.sgm, $0.diffusers) }) }
            return rest.isEmpty ? String(b.diffusers.dropLast()) : b.diffusers + rest
        }
        return nil
    }

    /// Replaces the leading layer name `from` (a whole dotted component run) with `to`.
    private static func rename(_ rest: String, _ pairs: [(String, String)]) -> String {
        for (from, to) in pairs where rest == from || rest.hasPrefix(from + ".") { return to + rest.dropFirst(from.count) }
        return rest
    }
}
