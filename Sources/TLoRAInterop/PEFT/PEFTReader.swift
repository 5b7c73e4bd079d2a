import TLoRAIO
import TLoRAModel

/// Reads a PEFT LoRA adapter directory (`adapter_config.json` + `adapter_model.safetensors`, or the
/// legacy `adapter_model.bin`) into an `Adapter`.
///
/// Conventions (peft 0.21): keys are `base_model.model.<module>.lora_A.weight` (`r × in`),
/// `.lora_B.weight` (`out × r`), `.lora_embedding_A` (`r × vocab`), `.lora_embedding_B` (`dim × r`),
/// `.lora_magnitude_vector` (DoRA, `out`); any other key (`modules_to_save`, trained biases) replaces
/// the base tensor of the same name. `ΔW = scale · B · A` with `scale = alpha/r` (`alpha/√r` with
/// rsLoRA), `r` and `alpha` resolved through `rank_pattern`/`alpha_pattern`. GPT-2 `Conv1D` layers
/// (`fan_in_fan_out`) and embeddings store their weight transposed (`WeightLayout.inOut`).
public enum PEFTReader {
    public static let configName = "adapter_config.json"
    public static let safetensorsName = "adapter_model.safetensors"
    public static let legacyName = "adapter_model.bin"
    static let keyPrefix = "base_model.model."

    /// Reads the directory. Tensors stay memory-mapped (safetensors) until used.
    ///
    /// - Parameter base: the base model's weight shapes, which VeRA and IA³ adapters need (their
    ///   files do not record every dimension of the layers they adapt).
    public static func read(directory: String, base: BaseShapes? = nil) throws -> Adapter {
        let configPath = joinPath(directory, configName)
        let config = try readConfig(configPath)
        let (tensors, weightsPath) = try readStateDict(directory: directory)
        return try adapter(config: config, tensors: tensors, weightsPath: weightsPath, base: base)
    }

    public static func readConfig(_ path: String) throws -> PEFTConfig {
        let bytes = try readWholeFile(path: path, limit: 16 << 20)
        do {
            return try PEFTConfig(json: try JSONParser.parse(bytes), path: path)
        } catch let e as JSONError {
            throw InteropError(.invalidConfig, path, "\(e)")
        }
    }

    /// The state dict, from `adapter_model.safetensors` or else `adapter_model.bin`.
    public static func readStateDict(directory: String) throws -> ([(name: String, tensor: StoredTensor)], String) {
        let st = joinPath(directory, safetensorsName)
        if pathKind(st) == .file {
            let file = try SafetensorsFile(path: st)
            return (try file.entries.map { ($0.name, try file.tensor($0.name)) }, st)
        }
        let bin = joinPath(directory, legacyName)
        if pathKind(bin) == .file {
            return (try TorchStateDict.read(path: bin), bin)
        }
        throw InteropError(.missingFile, directory, "no \(safetensorsName) or \(legacyName) in this PEFT adapter directory")
    }

    private enum Role: String {
        case a = "lora_A", b = "lora_B", embeddingA = "lora_embedding_A", embeddingB = "lora_embedding_B", magnitude = "lora_magnitude_vector"
        /// `lora_bias`: the bias of lora_B (the key ends in `.lora_B.bias`).
        case bias = "lora_B.bias"
    }

    /// Splits `<module>.<role>[.weight]` into module and role; nil for keys that are not LoRA factors.
    private static func split(_ key: String) -> (module: String, role: Role)? {
        var k = key
        if k.hasSuffix(".lora_B.bias") { return (String(k.dropLast(".lora_B.bias".count)), .bias) }
        if k.hasSuffix(".weight") { k.removeLast(".weight".count) }
        for role in [Role.a, .b, .embeddingA, .embeddingB, .magnitude] {
            let suffix = "." + role.rawValue
            if k.hasSuffix(suffix) { return (String(k.dropLast(suffix.count)), role) }
        }
        return nil
    }

    /// Builds the adapter from a parsed config and state dict.
    public static func adapter(config: PEFTConfig, tensors: [(name: String, tensor: StoredTensor)], weightsPath: String,
                               base: BaseShapes? = nil) throws -> Adapter {
        guard config.peftType == "LORA" else {
            return try structuredAdapter(config: config, tensors: tensors, weightsPath: weightsPath, base: base)
        }
        func fail(_ problem: String) -> InteropError { InteropError(.shapeMismatch, weightsPath, problem) }
        func fail(_ code: InteropError.Code, _ problem: String) -> InteropError { InteropError(code, weightsPath, problem) }
        var parts: [String: [Role: StoredTensor]] = [:]
        var order: [String] = []
        var replaced: [ReplacedTensor] = []
        var prefixes: [String: String] = [:]
        for (key, tensor) in tensors {
            let hasPrefix = key.hasPrefix(keyPrefix)
            let stripped = hasPrefix ? String(key.dropFirst(keyPrefix.count)) : key
            if let (module, role) = split(stripped) {
                if parts[module] == nil {
                    parts[module] = [:]
                    order.append(module)
                    prefixes[module] = hasPrefix ? keyPrefix : ""
                }
                guard parts[module]?[role] == nil else { throw fail(.unexpectedTensor, "\(key) appears twice") }
                parts[module]?[role] = tensor
            } else if stripped.contains("lora_") {
                throw fail(.unexpectedTensor, "unexpected LoRA tensor \(key) (multi-adapter files and LoRA variants other than plain LoRA/DoRA are not supported)")
            } else {
                replaced.append(replacedTensor(key: key, stripped: stripped, tensor: tensor))
            }
        }
        var modules: [AdapterModule] = []
        for name in order {
            let p = parts[name] ?? [:]
            let isEmbedding = p[.embeddingA] != nil || p[.embeddingB] != nil
            guard var a = p[isEmbedding ? .embeddingA : .a], var b = p[isEmbedding ? .embeddingB : .b] else {
                let have = p.keys.map(\.rawValue).sorted().joined(separator: ", ")
                throw fail(.missingTensor, "module \(name) has \(have) but not both LoRA factors")
            }
            if isEmbedding, p[.a] != nil || p[.b] != nil { throw fail(.unexpectedTensor, "module \(name) mixes embedding and linear LoRA factors") }
            // A convolution: lora_A is [r, in, k…] (the kernel), lora_B [out, r, 1…] (pointwise).
            var kernel: [Int] = []
            if a.shape.count > 2, !isEmbedding {
                guard a.shape.count <= 5, b.shape.count == a.shape.count, b.shape.dropFirst(2).allSatisfy({ $0 == 1 }),
                      let cols = CheckedSize.product(Array(a.shape.dropFirst())) else {
                    throw fail("module \(name): conv factors of shape \(a.shape) and \(b.shape) are not [r, in, k…] and [out, r, 1…]")
                }
                kernel = Array(a.shape.dropFirst(2))
                a = a.reshaped([a.shape[0], cols])
                b = b.reshaped(Array(b.shape.prefix(2)))
            }
            guard a.shape.count == 2, b.shape.count == 2 else {
                throw fail("module \(name): factors of shape \(a.shape) and \(b.shape) are not matrices")
            }
            let rank = a.shape[0]
            guard b.shape[1] == rank else { throw fail("module \(name): lora_A has rank \(rank) but lora_B is \(b.shape[0])×\(b.shape[1])") }
            let configRank = config.rank(for: name)
            guard configRank == rank else {
                throw fail("module \(name): adapter_config.json gives rank \(configRank) but the tensors have rank \(rank)")
            }
            let scale = config.scale(for: name)
            var magnitude = p[.magnitude]
            if let m = magnitude {
                guard !isEmbedding else { throw fail(.unsupported, "module \(name): DoRA on embedding layers is not supported") }
                guard m.elementCount == b.shape[0] else { throw fail("module \(name): DoRA magnitude has \(m.elementCount) values for \(b.shape[0]) outputs") }
                magnitude = m.reshaped([b.shape[0]])
            } else if config.useDoRA && !isEmbedding {
                throw fail(.missingTensor, "module \(name): use_dora is set but there is no lora_magnitude_vector")
            }
            var biasDelta = p[.bias]
            if let d = biasDelta {
                guard config.loraBias, !isEmbedding else { throw fail(.unexpectedTensor, "module \(name): a lora_B.bias without lora_bias in adapter_config.json") }
                guard d.elementCount == b.shape[0] else { throw fail("module \(name): lora_B.bias has \(d.elementCount) values for \(b.shape[0]) outputs") }
                biasDelta = d.reshaped([b.shape[0]])
            }
            var attributes: [String: String] = [:]
            if let prefix = prefixes[name], prefix != keyPrefix { attributes["peft.key_prefix"] = prefix }
            modules.append(AdapterModule(
                name: name, target: name + ".weight", kind: isEmbedding ? .embedding : .linear,
                // Embedding weights are vocab × dim: the transpose of the canonical dim × vocab ΔW.
                layout: isEmbedding || config.fanInFanOut ? .inOut : .outIn,
                outFeatures: b.shape[0], inFeatures: a.shape[1], scale: scale,
                update: .lowRank(a: a, b: b), doraMagnitude: magnitude, kernel: kernel, biasDelta: biasDelta, attributes: attributes))
        }
        let adapter = Adapter(metadata: metadata(config), modules: modules, replacedTensors: replaced)
        do {
            try adapter.validate()
        } catch let e as ModelError {
            throw fail(.invalidAdapter, e.description)
        }
        return adapter
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = self[...]
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }

    /// `lm_head.modules_to_save.default.weight` → `lm_head.weight`.
    func removingModulesToSave() -> String {
        guard let r = firstRange(of: ".modules_to_save.") else { return self }
        let after = self[r.upperBound...]
        guard let dot = after.firstIndex(of: ".") else { return self }
        return String(self[..<r.lowerBound]) + String(after[dot...])
    }
}
