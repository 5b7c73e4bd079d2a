/// How one model family names its adapted layers in Hugging Face checkpoints and in GGUF files, and
/// which projections llama.cpp's converter permutes for its rotary-embedding layout. Data, not code:
/// a family not listed here is refused by name rather than guessed.
public struct ArchitectureTable: Sendable {
    public enum HeadCount: Sendable { case attention, keyValue }

    /// GGUF's `general.architecture`.
    public var gguf: String
    /// `config.json` `model_type` values (and PEFT `auto_mapping` classes) of this family.
    public var modelTypes: [String]
    /// The HF module path of layer N, before the projection name, e.g. `model.layers.{N}.`.
    public var layerPrefix: String
    /// GGUF tensor stem ↔ HF projection path inside a layer, e.g. `attn_q` ↔ `self_attn.q_proj`.
    public var projections: [(gguf: String, hf: String)]
    /// Projections whose output rows llama.cpp's converter permutes, with the head count it uses.
    public var rotaryPermuted: [String: HeadCount]
    /// Whether adapters of this family convert to and from GGUF (checked against llama.cpp's converter).
    public var ggufLoRASupported: Bool

    public static let all: [ArchitectureTable] = [
        ArchitectureTable(gguf: "llama", modelTypes: ["llama", "LlamaForCausalLM"], layerPrefix: "model.layers.{N}.",
                          projections: llamaProjections, rotaryPermuted: ["attn_q": .attention, "attn_k": .keyValue], ggufLoRASupported: true),
        ArchitectureTable(gguf: "mistral", modelTypes: ["mistral", "MistralForCausalLM"], layerPrefix: "model.layers.{N}.",
                          projections: llamaProjections, rotaryPermuted: ["attn_q": .attention, "attn_k": .keyValue], ggufLoRASupported: true),
        ArchitectureTable(gguf: "qwen2", modelTypes: ["qwen2", "Qwen2ForCausalLM"], layerPrefix: "model.layers.{N}.",
                          projections: llamaProjections, rotaryPermuted: [:], ggufLoRASupported: true),
        // llama.cpp's converter (conversion/qwen.py Qwen3Model, gemma.py GemmaModel, phi.py Phi3MiniModel)
        // renames these projections without permuting them (their rotary layout is NEOX).
        ArchitectureTable(gguf: "qwen3", modelTypes: ["qwen3", "Qwen3ForCausalLM"], layerPrefix: "model.layers.{N}.",
                          projections: llamaProjections, rotaryPermuted: [:], ggufLoRASupported: true),
        ArchitectureTable(gguf: "gemma", modelTypes: ["gemma", "GemmaForCausalLM"], layerPrefix: "model.layers.{N}.",
                          projections: llamaProjections, rotaryPermuted: [:], ggufLoRASupported: true),
        ArchitectureTable(gguf: "phi3", modelTypes: ["phi3", "Phi3ForCausalLM"], layerPrefix: "model.layers.{N}.",
                          projections: [("attn_qkv", "self_attn.qkv_proj"), ("attn_output", "self_attn.o_proj"),
                                        ("ffn_up", "mlp.gate_up_proj"), ("ffn_down", "mlp.down_proj")],
                          rotaryPermuted: [:], ggufLoRASupported: true),
        ArchitectureTable(gguf: "gpt2", modelTypes: ["gpt2", "GPT2LMHeadModel", "GPT2Model"], layerPrefix: "transformer.h.{N}.",
                          projections: [("attn_qkv", "attn.c_attn"), ("attn_output", "attn.c_proj"), ("ffn_up", "mlp.c_fc"), ("ffn_down", "mlp.c_proj")],
                          rotaryPermuted: [:], ggufLoRASupported: false),
        ArchitectureTable(gguf: "bert", modelTypes: ["bert", "BertModel", "BertForSequenceClassification"], layerPrefix: "encoder.layer.{N}.",
                          projections: [("attn_q", "attention.self.query"), ("attn_k", "attention.self.key"), ("attn_v", "attention.self.value"),
                                        ("attn_output", "attention.output.dense"), ("ffn_up", "intermediate.dense"), ("ffn_down", "output.dense")],
                          rotaryPermuted: [:], ggufLoRASupported: false),
    ]

    static let llamaProjections: [(gguf: String, hf: String)] = [
        ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"), ("attn_v", "self_attn.v_proj"), ("attn_output", "self_attn.o_proj"),
        ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"), ("ffn_down", "mlp.down_proj"),
    ]

    /// The table for a GGUF architecture name.
    public static func gguf(_ name: String) -> ArchitectureTable? { all.first { $0.gguf == name } }

    /// The table for a `config.json` `model_type` or a model class name.
    public static func modelType(_ name: String) -> ArchitectureTable? { all.first { $0.modelTypes.contains(name) } }

    /// `blk.3.attn_q.weight` → `model.layers.3.self_attn.q_proj`, or nil if it is not a layer projection.
    public func hfModule(forGGUF tensor: String) -> String? {
        let parts = tensor.split(separator: ".")
        guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0, parts[3] == "weight",
              let p = projections.first(where: { $0.gguf == parts[2] }) else { return nil }
        return layerPrefix.replacingFirstOccurrence(of: "{N}", with: String(layer)) + p.hf
    }

    /// `model.layers.3.self_attn.q_proj` → (`blk.3.attn_q.weight`, `attn_q`), or nil.
    /// (Every `layerPrefix` ends in `{N}.`.)
    public func ggufTensor(forHF module: String) -> (name: String, projection: String)? {
        let prefix = String(layerPrefix.dropLast("{N}.".count))
        guard module.hasPrefix(prefix) else { return nil }
        let rest = module.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]), layer >= 0 else { return nil }
        let projection = String(rest[rest.index(after: dot)...])
        guard let p = projections.first(where: { $0.hf == projection }) else { return nil }
        return ("blk.\(layer).\(p.gguf).weight", p.gguf)
    }
}

extension String {
    func replacingFirstOccurrence(of target: String, with replacement: String) -> String {
        guard let r = firstRange(of: target) else { return self }
        var s = self
        s.replaceSubrange(r, with: replacement)
        return s
    }
}
