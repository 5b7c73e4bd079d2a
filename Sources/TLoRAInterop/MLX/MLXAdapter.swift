import TLoRAIO
import TLoRAModel

/// MLX-LM LoRA/DoRA adapters: `adapters.safetensors` + `adapter_config.json`.
///
/// Conventions (mlx-lm `tuner/lora.py`, `tuner/dora.py`): `<module>.lora_a` is `in × r`,
/// `<module>.lora_b` is `r × out`, and `y = W x + scale · (x · lora_a) · lora_b`, so the canonical
/// factors are `A = lora_aᵀ`, `B = lora_bᵀ` and `scale = lora_parameters.scale` (no division by the
/// rank). DoRA adds `<module>.m` (`out`) with `W' = m / ‖W + ΔW‖_row · (W + ΔW)`. For embeddings
/// `ΔE = scale · lora_a · lora_b` (`vocab × dim`), whose transpose is again `lora_bᵀ · lora_aᵀ`.
/// MLX writes safetensors headers without padding; the safetensors reader never assumes alignment.
public enum MLXAdapter {
    public static let configName = "adapter_config.json"
    public static let weightsName = "adapters.safetensors"

    /// What `adapter_config.json` says: fine-tune type, scale, rank (optional), and the JSON itself.
    public struct Config: Sendable {
        public var type: String
        public var scale: Double
        public var rank: Int?
        public var model: String?
        public var json: JSONValue
    }

    public static func parseConfig(_ bytes: [UInt8], path configPath: String) throws -> Config {
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch { throw InteropError(.invalidConfig, configPath, error.description) }
        guard let root = json.objectValue else { throw InteropError(.invalidConfig, configPath, "not a JSON object") }
        let type = root["fine_tune_type"]?.stringValue ?? (root["use_dora"]?.boolValue == true ? "dora" : "lora")
        guard type == "lora" || type == "dora" else {
            throw InteropError(.unsupported, configPath, "fine_tune_type \"\(type)\" is not supported (lora or dora)")
        }
        guard let params = root["lora_parameters"]?.objectValue else { throw InteropError(.invalidConfig, configPath, "no lora_parameters object") }
        guard let scale = params["scale"]?.doubleValue else { throw InteropError(.invalidConfig, configPath, "lora_parameters.scale must be a finite number") }
        let rank = params["rank"]?.intValue
        if let r = rank, r <= 0 { throw InteropError(.invalidConfig, configPath, "lora_parameters.rank must be positive, got \(r)") }
        if let v = params["rank"], rank == nil, !v.isNull { throw InteropError(.invalidConfig, configPath, "lora_parameters.rank must be an integer") }
        return Config(type: type, scale: scale, rank: rank, model: root["model"]?.stringValue, json: json)
    }

    public static func read(directory: String) throws -> Adapter {
        let configPath = joinPath(directory, configName)
        let config = try parseConfig(try readWholeFile(path: configPath, limit: 16 << 20), path: configPath)
        let type = config.type, scale = config.scale, configRank = config.rank, json = config.json
        let weightsPath = joinPath(directory, weightsName)
        let file = try SafetensorsFile(path: weightsPath)
        func fail(_ p: String) -> InteropError { InteropError(.unexpectedTensor, weightsPath, p) }
        func fail(_ code: InteropError.Code, _ p: String) -> InteropError { InteropError(code, weightsPath, p) }
        var parts: [String: [String: StoredTensor]] = [:]
        var order: [String] = []
        for e in file.entries.sorted(by: { $0.name < $1.name }) {
            guard let dot = e.name.lastIndex(of: ".") else { throw fail("unexpected tensor \(e.name)") }
            let module = String(e.name[..<dot]), role = String(e.name[e.name.index(after: dot)...])
            guard ["lora_a", "lora_b", "m"].contains(role) else {
                throw fail("unexpected tensor \(e.name) (full fine-tuning weights are not an adapter tlora can read)")
            }
            if parts[module] == nil {
                parts[module] = [:]
                order.append(module)
            }
            parts[module]?[role] = try file.tensor(e.name)
        }
        var modules: [AdapterModule] = []
        for name in order {
            let p = parts[name] ?? [:]
            guard let la = p["lora_a"], let lb = p["lora_b"] else { throw fail(.missingTensor, "module \(name) lacks lora_a or lora_b") }
            guard la.shape.count == 2, lb.shape.count == 2, la.shape[1] == lb.shape[0] else {
                throw fail(.shapeMismatch, "module \(name): lora_a \(la.shape) and lora_b \(lb.shape) do not chain (in × r, r × out)")
            }
            if let r = configRank, r != la.shape[1] {
                throw fail(.shapeMismatch, "module \(name): adapter_config.json gives rank \(r) but the tensors have rank \(la.shape[1])")
            }
            let isEmbedding = name.hasSuffix("embed_tokens") || name.hasSuffix("wte") || name.hasSuffix("word_embeddings")
            var magnitude = p["m"]
            if let m = magnitude {
                guard !isEmbedding else { throw fail(.unsupported, "module \(name): DoRA on embeddings is not supported") }
                guard m.elementCount == lb.shape[1] else { throw fail(.shapeMismatch, "module \(name): m has \(m.elementCount) values for \(lb.shape[1]) outputs") }
                magnitude = m.reshaped([lb.shape[1]])
            } else if type == "dora" && !isEmbedding {
                throw fail(.missingTensor, "module \(name): fine_tune_type is dora but there is no \(name).m")
            }
            modules.append(AdapterModule(name: name, target: name + ".weight", kind: isEmbedding ? .embedding : .linear,
                                         layout: isEmbedding ? .inOut : .outIn, outFeatures: lb.shape[1], inFeatures: la.shape[0],
                                         scale: scale, update: .lowRank(a: la.transposed(), b: lb.transposed()), doraMagnitude: magnitude))
        }
        var metadata = AdapterMetadata()
        metadata.sourceFormat = "mlx-lm"
        if let model = config.model { metadata.baseModel = model }
        metadata["mlx.adapter_config"] = JSONWriter.string(json)
        let adapter = Adapter(metadata: metadata, modules: modules)
        do { try adapter.validate() } catch let e as ModelError { throw fail(e.description) }
        return adapter
    }
}
