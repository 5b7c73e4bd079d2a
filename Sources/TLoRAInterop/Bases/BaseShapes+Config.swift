import TLoRAIO

extension BaseShapes {
    /// The weight shapes a decoder of the Llama family (`model_type` llama, mistral, qwen2, qwen3)
    /// has, from its `config.json` alone: `model.embed_tokens`, every layer's attention and MLP
    /// projections, `lm_head` — enough to name and size an adapter's layers without the weights.
    /// Nil for other architectures (their layer names are not derived here).
    public init?(config json: JSONValue, path: String) {
        guard let type = json["model_type"]?.stringValue, ["llama", "mistral", "qwen2", "qwen3"].contains(type),
              let hidden = json["hidden_size"]?.intValue, let inter = json["intermediate_size"]?.intValue,
              let layers = json["num_hidden_layers"]?.intValue, let heads = json["num_attention_heads"]?.intValue,
              hidden > 0, inter > 0, heads > 0, (0...100_000).contains(layers)
        else { return nil }
        let kv = json["num_key_value_heads"]?.intValue ?? heads
        let headDim = json["head_dim"]?.intValue ?? hidden / heads
        guard kv > 0, headDim > 0, let q = CheckedSize.multiply(heads, headDim), let k = CheckedSize.multiply(kv, headDim) else { return nil }
        var shapes: [String: [Int]] = [:]
        if let vocab = json["vocab_size"]?.intValue, vocab > 0 {
            shapes["model.embed_tokens.weight"] = [vocab, hidden]
            shapes["lm_head.weight"] = [vocab, hidden]
        }
        for i in 0..<layers {
            let p = "model.layers.\(i)."
            shapes[p + "self_attn.q_proj.weight"] = [q, hidden]
            shapes[p + "self_attn.k_proj.weight"] = [k, hidden]
            shapes[p + "self_attn.v_proj.weight"] = [k, hidden]
            shapes[p + "self_attn.o_proj.weight"] = [hidden, q]
            shapes[p + "mlp.gate_proj.weight"] = [inter, hidden]
            shapes[p + "mlp.up_proj.weight"] = [inter, hidden]
            shapes[p + "mlp.down_proj.weight"] = [hidden, inter]
        }
        self.init(path: path, shapes: shapes)
    }

    /// The shapes from `base`: a checkpoint's weights, or else its (or the given) `config.json`
    /// for the architectures `init(config:path:)` knows; nil when neither says.
    public static func of(base: String) throws -> BaseShapes? {
        if let shapes = try BaseShapes(base: base) { return shapes }
        let config = pathKind(base) == .directory ? joinPath(base, "config.json") : base
        guard pathKind(config) == .file, config.hasSuffix(".json") else { return nil }
        return BaseShapes(config: try JSONParser.parse(try readWholeFile(path: config, limit: 16 << 20)), path: config)
    }

    /// Every tensor name (a resolver of flattened module names matches against these).
    public var tensorNames: [String] { shapes.keys.sorted() }
}
