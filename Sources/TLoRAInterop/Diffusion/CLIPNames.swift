/// Hugging Face `CLIPTextModel` module names for the layers of an OpenCLIP text tower (SD 2.x's
/// `cond_stage_model.model.*`, SDXL's `conditioner.embedders.1.model.*`), which adapters trained
/// through transformers name that way.
///
/// OpenCLIP keeps q, k and v in one `attn.in_proj_weight` of shape `[3d, d]` (q rows first, as
/// `torch.nn.MultiheadAttention` does and diffusers' SDXL conversion script concatenates them), so
/// `self_attn.q_proj` is rows `0..<d` of it, `k_proj` rows `d..<2d`, `v_proj` rows `2d..<3d`.
enum CLIPNames {
    /// OpenCLIP layer → Hugging Face layer, inside `transformer.resblocks.N.` / `encoder.layers.N.`.
    static let layers: [(openCLIP: String, hf: String)] = [
        ("attn.out_proj", "self_attn.out_proj"), ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2"),
        ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
    ]

    /// Each Hugging Face module path (without `text_model.`) an OpenCLIP weight answers to, with the
    /// rows it covers when the weight is fused. `name` is the tensor's name inside the tower; `shape`
    /// its shape.
    static func hfAliases(ofOpenCLIP name: String, shape: [Int]) -> [(path: String, rows: Range<Int>?)] {
        if name == "ln_final.weight" { return [("final_layer_norm", nil)] }
        if name == "token_embedding.weight" { return [("embeddings.token_embedding", nil)] }
        let prefix = "transformer.resblocks."
        guard name.hasPrefix(prefix) else { return [] }
        let rest = name.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return [] }
        let inner = String(rest[rest.index(after: dot)...])
        let hfLayer = "encoder.layers.\(layer)."
        if inner == "attn.in_proj_weight" {
            guard shape.count == 2, shape[0] == 3 * shape[1], shape[1] > 0 else { return [] }
            let d = shape[1]
            return [(hfLayer + "self_attn.q_proj", 0..<d), (hfLayer + "self_attn.k_proj", d..<(2 * d)),
                    (hfLayer + "self_attn.v_proj", (2 * d)..<(3 * d))]
        }
        for (o, h) in layers where inner == o + ".weight" { return [(hfLayer + h, nil)] }
        return []
    }
}
