import TLoRAIO
import TLoRAModel

/// PEFT's adapter types besides LoRA (peft 0.21), as `save_pretrained` writes them:
///
/// | type | keys under `base_model.model.<module>.` | update | scale |
/// |---|---|---|---|
/// | `LOKR` | `lokr_w1` or `lokr_w1_a`+`lokr_w1_b`; `lokr_w2` or `lokr_w2_a`+`lokr_w2_b`; `lokr_t2` (conv, `use_effective_conv2d`) | Kronecker | `alpha / r` always, `r` and `alpha` through `rank_pattern`/`alpha_pattern` — also when both factors are full, where LyCORIS would use 1 |
/// | `LOHA` | `hada_w1_a`, `hada_w1_b`, `hada_w2_a`, `hada_w2_b`; `hada_t1`, `hada_t2` (conv) | Hadamard | `alpha / r` |
/// | `ADALORA` | `lora_A` `[r, in]`, `lora_B` `[out, r]`, `lora_E` `[r, 1]` | `B · diag(E) · A` | `lora_alpha / (n + 1e-5)` (`r` = the saved rank, which the rank allocator's `rank_pattern` masks give, 0 allowed; `n` = the rank before pruning, the mask's length) |
/// | `VERA` | `vera_lambda_b` `[out]`, `vera_lambda_d` `[r]`; shared `base_model.vera_A` `[r, max_in]`, `base_model.vera_B` `[max_out, r]` | VeRA | 1 |
/// | `IA3` | `ia3_l` `[out, 1]` (scales the outputs) or `[1, in]` (`feedforward_modules`: scales the inputs); conv `[out, 1, 1, 1]` / `[1, in, 1, 1]` | IA³ | — |
///
/// VeRA and IA³ files do not record every dimension of the layers they adapt (VeRA slices its
/// projections to the layer's `in`; an IA³ vector has one side), so they need the base's shapes.
extension PEFTReader {
    /// Per type: the suffixes of its tensors.
    static let structuredSuffixes: [String: Set<String>] = [
        "LOKR": ["lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2"],
        "LOHA": ["hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2"],
        "ADALORA": ["lora_A", "lora_B", "lora_E"],
        "VERA": ["vera_lambda_b", "vera_lambda_d"],
        "IA3": ["ia3_l"],
    ]
    static let veraShared = ["base_model.vera_A", "base_model.vera_B"]

    /// The adapter of a `LOKR`, `LOHA`, `ADALORA`, `VERA` or `IA3` directory.
    static func structuredAdapter(config: PEFTConfig, tensors: [(name: String, tensor: StoredTensor)], weightsPath: String,
                                  base: BaseShapes?) throws -> Adapter {
        func fail(_ problem: String) -> InteropError { InteropError(.shapeMismatch, weightsPath, problem) }
        func fail(_ code: InteropError.Code, _ problem: String) -> InteropError { InteropError(code, weightsPath, problem) }
        let type = config.peftType
        let suffixes = structuredSuffixes[type] ?? []
        var parts: [String: [String: StoredTensor]] = [:]
        var order: [String] = []
        var prefixes: [String: String] = [:]
        var replaced: [ReplacedTensor] = []
        var shared: [String: StoredTensor] = [:]
        for (key, tensor) in tensors {
            if type == "VERA", veraShared.contains(key) {
                guard shared[key] == nil else { throw fail(.unexpectedTensor, "\(key) appears twice") }
                shared[key] = tensor
                continue
            }
            let hasPrefix = key.hasPrefix(keyPrefix)
            let stripped = hasPrefix ? String(key.dropFirst(keyPrefix.count)) : key
            if let dot = stripped.lastIndex(of: "."), suffixes.contains(String(stripped[stripped.index(after: dot)...])), dot != stripped.startIndex {
                let module = String(stripped[..<dot]), suffix = String(stripped[stripped.index(after: dot)...])
                if parts[module] == nil {
                    parts[module] = [:]
                    order.append(module)
                    prefixes[module] = hasPrefix ? keyPrefix : ""
                }
                guard parts[module]?[suffix] == nil else { throw fail(.unexpectedTensor, "\(key) appears twice") }
                parts[module]?[suffix] = tensor
            } else if let family = ["lokr_", "hada_", "lora_", "vera_", "ia3_"].first(where: { stripped.contains($0) }) {
                throw fail(.unexpectedTensor, "unexpected tensor \(key) in a \(type) adapter (a \(family)… tensor of another adapter type, or of a second adapter)")
            } else {
                replaced.append(replacedTensor(key: key, stripped: stripped, tensor: tensor))
            }
        }
        var projections: [ProjectionPair] = []
        if type == "VERA" {
            guard config.saveProjection, let a = shared["base_model.vera_A"], let b = shared["base_model.vera_B"] else {
                throw fail(.missingTensor, config.saveProjection
                    ? "a VeRA adapter without its shared projections base_model.vera_A and base_model.vera_B"
                    : "this VeRA adapter was saved with save_projection=false: its projections are not in the file (PEFT regenerates them from projection_prng_key with torch's random generator, which tlora does not reproduce); save it again with save_projection=True")
            }
            projections = [ProjectionPair(name: "vera", a: a, b: b)]
            try AdapterRules.check(projections: "vera", ProjectionShape(a: a.shape, b: b.shape))
        }
        var modules: [AdapterModule] = []
        for name in order {
            let p = parts[name] ?? [:]
            func need(_ s: String) throws -> StoredTensor {
                guard let t = p[s] else { throw fail(.missingTensor, "module \(name) has \(p.keys.sorted().joined(separator: ", ")) but no \(s)") }
                return t
            }
            var module: AdapterModule
            switch type {
            case "ADALORA":
                module = try adaLoRAModule(name, a: need("lora_A"), b: need("lora_B"), e: need("lora_E"), config: config, fail: fail)
            case "VERA":
                module = try veraModule(name, lambdaB: need("vera_lambda_b"), lambdaD: need("vera_lambda_d"), pair: projections[0], config: config,
                                        base: base, fail: fail)
            case "IA3":
                module = try ia3Module(name, vector: need("ia3_l"), config: config, base: base, fail: fail)
            default:  // LOKR, LOHA
                module = try lycorisFamilyModule(name, tensors: p, config: config, base: base, path: weightsPath, fail: fail)
            }
            if let prefix = prefixes[name], prefix != keyPrefix { module.attributes["peft.key_prefix"] = prefix }
            modules.append(module)
        }
        let adapter = Adapter(metadata: metadata(config), modules: modules, replacedTensors: replaced, projections: projections)
        do {
            try adapter.validate()
        } catch let e as ModelError {
            throw fail(.invalidAdapter, e.description)
        }
        return adapter
    }

    /// LoKr and LoHa: the factors are LyCORIS's (same names, shapes and meaning), the scale is
    /// PEFT's `alpha / r` from the config, whatever the factors — LyCORIS would use 1 for a LoKr of two
    /// full factors, PEFT does not.
    static func lycorisFamilyModule(_ name: String, tensors: [String: StoredTensor], config: PEFTConfig, base: BaseShapes?, path: String,
                                    fail: (InteropError.Code, String) -> InteropError) throws -> AdapterModule {
        var m = try LyCORISModule.read(name: name, tensors: tensors, alpha: nil, path: path)
        m.target = name + ".weight"
        m.attributes = [:]
        let r = config.rank(for: name)
        if let decomposed = PEFTWriter.peftRank(m), decomposed != r {
            throw fail(.shapeMismatch, "module \(name): adapter_config.json gives rank \(r) but the tensors have rank \(decomposed)")
        }
        m.scale = config.scale(for: name)
        // A conv whose factors are flattened over in · kernel (1×1, or LoKr/LoHa without Tucker cores)
        // does not show its kernel: the base's weight does.
        if m.kernel.isEmpty, let s = base?.tensorShape(of: name), s.count > 2, s[0] == m.outFeatures,
           let cols = CheckedSize.product(Array(s.dropFirst())), cols == m.inFeatures {
            m.kernel = Array(s.dropFirst(2))
        }
        return m
    }

    static func adaLoRAModule(_ name: String, a: StoredTensor, b: StoredTensor, e: StoredTensor, config: PEFTConfig,
                              fail: (InteropError.Code, String) -> InteropError) throws -> AdapterModule {
        guard a.shape.count == 2, b.shape.count == 2, e.shape.count == 2, e.shape[1] == 1 else {
            throw fail(.shapeMismatch, "module \(name): AdaLoRA factors must be lora_A [r, in], lora_B [out, r], lora_E [r, 1]; got \(a.shape), \(b.shape), \(e.shape)")
        }
        let r = a.shape[0]
        guard b.shape[1] == r, e.shape[0] == r else { throw fail(.shapeMismatch, "module \(name): lora_A, lora_B and lora_E disagree on the rank (\(a.shape), \(b.shape), \(e.shape))") }
        let expected = config.adaLoRAMasks[name]?.kept ?? config.r
        guard expected == r else {
            throw fail(.shapeMismatch, "module \(name): adapter_config.json gives rank \(expected) (init_r and rank_pattern) but the tensors have rank \(r)")
        }
        return AdapterModule(name: name, layout: config.fanInFanOut ? .inOut : .outIn, outFeatures: b.shape[0], inFeatures: a.shape[1],
                             scale: config.adaLoRAScale(module: name, savedRank: r), update: .diagonalLowRank(a: a, b: b, e: e.reshaped([r])))
    }

    /// The layer's `[out, in]` in the canonical orientation, from the base's weights.
    static func layerShape(_ name: String, config: PEFTConfig, base: BaseShapes?, type: String, fail: (InteropError.Code, String) -> InteropError) throws -> [Int] {
        guard let base else {
            throw fail(.needsOption, "module \(name): \(type) adapters do not record every dimension of their layers; give the base model (--base, or --base-config with its config.json)")
        }
        guard let s = base.tensorShape(of: name), s.count >= 2 else { throw fail(.unmatchedNames, "module \(name): the base \(base.path) has no weight \(name).weight") }
        return config.fanInFanOut && s.count == 2 ? [s[1], s[0]] + s.dropFirst(2) : s
    }

    static func veraModule(_ name: String, lambdaB: StoredTensor, lambdaD: StoredTensor, pair: ProjectionPair, config: PEFTConfig, base: BaseShapes?,
                           fail: (InteropError.Code, String) -> InteropError) throws -> AdapterModule {
        let shape = try layerShape(name, config: config, base: base, type: "VeRA", fail: fail)
        guard shape.count == 2 else { throw fail(.unsupported, "module \(name): VeRA adapts linear layers, but \(name).weight is \(shape)") }
        return AdapterModule(name: name, layout: config.fanInFanOut ? .inOut : .outIn, outFeatures: shape[0], inFeatures: shape[1], scale: 1,
                             update: .vera(VeRAUpdate(projections: pair.name, lambdaB: lambdaB, lambdaD: lambdaD)))
    }

    static func ia3Module(_ name: String, vector: StoredTensor, config: PEFTConfig, base: BaseShapes?, fail: (InteropError.Code, String) -> InteropError) throws -> AdapterModule {
        let shape = try layerShape(name, config: config, base: base, type: "IA³", fail: fail)
        let kernel = Array(shape.dropFirst(2))
        let (out, channels) = (shape[0], shape[1])
        // [out, 1(, 1, 1)] scales the outputs, [1, in(, 1, 1)] the inputs (PEFT's feedforward layers);
        // with fan_in_fan_out PEFT stores the transpose of each.
        let v = config.fanInFanOut && vector.shape.count == 2 ? [vector.shape[1], vector.shape[0]] : vector.shape
        let axis: FeatureAxis
        if v.count == shape.count, v[0] == out, v.dropFirst().allSatisfy({ $0 == 1 }), !(out == 1 && channels == 1) {
            axis = .out
        } else if v.count == shape.count, v[0] == 1, v[1] == channels, v.dropFirst(2).allSatisfy({ $0 == 1 }) {
            axis = .in
        } else {
            throw fail(.shapeMismatch, "module \(name): ia3_l has shape \(vector.shape), which fits neither the \(out) outputs nor the \(channels) inputs of \(name).weight \(shape)")
        }
        let n = axis == .out ? out : channels
        guard let k = CheckedSize.product(kernel), let inn = CheckedSize.multiply(channels, k) else { throw fail(.shapeMismatch, "module \(name): weight shape \(shape) overflows") }
        return AdapterModule(name: name, layout: config.fanInFanOut ? .inOut : .outIn, outFeatures: out, inFeatures: inn, scale: 1,
                             update: .featureScale(FeatureScale(vector: vector.reshaped([n]), axis: axis)), kernel: kernel)
    }

    /// The metadata every PEFT import records.
    static func metadata(_ config: PEFTConfig) -> AdapterMetadata {
        var metadata = AdapterMetadata()
        metadata.sourceFormat = "peft"
        metadata["peft_type"] = config.peftType
        if let base = config.baseModel { metadata.baseModel = base }
        if let task = config.taskType { metadata["task_type"] = task }
        metadata["peft.adapter_config"] = JSONWriter.string(.object(config.json))
        return metadata
    }

    /// A tensor that is not an adapter factor (`modules_to_save` copies, trained biases): a whole
    /// replacement of the base tensor of the same name.
    static func replacedTensor(key: String, stripped: String, tensor: StoredTensor) -> ReplacedTensor {
        ReplacedTensor(target: stripped.replacingAll(".base_layer.", with: ".").removingModulesToSave(), value: tensor, sourceName: key)
    }
}
