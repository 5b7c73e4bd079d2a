import TLoRAIO

/// The parts of PEFT's `adapter_config.json` that change `ΔW`, for the types tlora reads: `LORA`
/// (`LoraConfig`), `LOKR`, `LOHA` (`alpha` instead of `lora_alpha`, scale `α / r` always), `ADALORA`
/// (rank pattern as masks), `VERA` and `IA3` (no rank or alpha).
public struct PEFTConfig: Sendable, Equatable {
    public var peftType: String
    /// The rank PEFT creates modules with (`r`; `init_r` for AdaLoRA; 0 for IA³).
    public var r: Int
    /// `lora_alpha`, or LoKr's and LoHa's `alpha` (0 for VeRA and IA³, which have none).
    public var loraAlpha: Double
    public var useRSLoRA: Bool
    /// Pattern key → rank, in file order (PEFT takes the first key that matches).
    public var rankPattern: [(key: String, value: Int)]
    /// Pattern key → alpha, in file order.
    public var alphaPattern: [(key: String, value: Double)]
    public var fanInFanOut: Bool
    public var useDoRA: Bool
    /// `lora_bias`: each lora_B carries a bias, merged as `β + scale · Δβ`.
    public var loraBias: Bool
    public var bias: String
    public var modulesToSave: [String]
    public var layersToTransform: [Int]?
    public var baseModel: String?
    public var taskType: String?
    /// AdaLoRA: module path → how many directions its `rank_pattern` mask keeps, and of how many.
    public var adaLoRAMasks: [String: (kept: Int, of: Int)] = [:]
    /// VeRA's `save_projection`: whether the shared projections are in the file.
    public var saveProjection = true
    /// IA³'s `feedforward_modules` (names, or one regular expression as PEFT allows).
    public var feedforwardModules: [String] = []
    /// LoKr/LoHa `use_effective_conv2d` (Tucker cores for conv kernels larger than 1×1).
    public var useEffectiveConv2d = false
    /// The whole file as parsed, for a faithful export.
    public var json: JSONObject

    /// The PEFT types tlora reads.
    public static let supportedTypes: Set<String> = ["LORA", "LOKR", "LOHA", "ADALORA", "VERA", "IA3"]

    public static func == (a: PEFTConfig, b: PEFTConfig) -> Bool { a.json == b.json }

    /// PEFT types tlora does not read, with what they are, for the error message.
    static let otherTypes: [String: String] = [
        "BOFT": "BOFT", "OFT": "OFT", "FOURIERFT": "FourierFT", "VBLORA": "VB-LoRA", "HRA": "HRA",
        "LN_TUNING": "LayerNorm tuning", "PROMPT_TUNING": "prompt tuning", "PREFIX_TUNING": "prefix tuning",
        "P_TUNING": "P-tuning", "POLY": "Polytropon", "XLORA": "X-LoRA", "BONE": "Bone", "RANDLORA": "RandLoRA",
    ]

    /// Parses and checks a config. Unsupported PEFT types and settings that change the model in ways
    /// a weight update cannot express are refused with the reason.
    public init(json value: JSONValue, path: String) throws {
        do {
            let f = try JSONFields(value, path: "")
            json = f.object
            peftType = try f.optionalString("peft_type") ?? "LORA"
            guard Self.supportedTypes.contains(peftType) else {
                let what = Self.otherTypes[peftType].map { " (\($0))" } ?? ""
                throw InteropError(.unsupported, path, "PEFT adapter type \(peftType)\(what) is not supported; tlora reads \(Self.supportedTypes.sorted().joined(separator: ", ")) adapters")
            }
            let lycorisLike = peftType == "LOKR" || peftType == "LOHA"
            switch peftType {
            case "IA3":
                r = 0
            case "ADALORA":
                guard let rank = try f.value("init_r").intValue, rank > 0 else { throw f.problem("init_r", "must be a positive integer") }
                r = rank
            default:
                guard let rank = try f.value("r").intValue else { throw f.problem("r", "must be a positive integer") }
                guard rank > 0 else { throw f.problem("r", "must be a positive integer, got \(rank)") }
                r = rank
            }
            if peftType == "VERA" || peftType == "IA3" {
                loraAlpha = 0
            } else {
                let key = lycorisLike ? "alpha" : "lora_alpha"
                guard let alpha = try f.value(key).doubleValue else { throw f.problem(key, "must be a finite number") }
                loraAlpha = alpha
            }
            useRSLoRA = try f.optionalBool("use_rslora") ?? false
            fanInFanOut = try f.optionalBool("fan_in_fan_out") ?? false
            useDoRA = try f.optionalBool("use_dora") ?? false
            if useDoRA, peftType != "LORA" { throw f.problem("use_dora", "is set for a \(peftType) adapter, which PEFT does not combine with DoRA") }
            if useRSLoRA, peftType != "LORA" { throw f.problem("use_rslora", "is set for a \(peftType) adapter") }
            bias = try f.optionalString("bias") ?? "none"
            guard ["none", "all", "lora_only"].contains(bias) else { throw f.problem("bias", "must be none, all or lora_only, got \(bias)") }
            if peftType == "ADALORA" {
                // {module.lora_E: [Bool]}: the directions the rank allocator kept.
                rankPattern = []
                for pair in try f.optionalObject("rank_pattern")?.object.pairs ?? [] {
                    guard let mask = pair.value.arrayValue else { throw f.problem("rank_pattern.\(pair.key)", "must be a list of booleans") }
                    var kept = 0
                    for v in mask {
                        guard case .bool(let b) = v else { throw f.problem("rank_pattern.\(pair.key)", "must be a list of booleans") }
                        if b { kept += 1 }
                    }
                    let module = pair.key.hasSuffix(".lora_E") ? String(pair.key.dropLast(".lora_E".count)) : pair.key
                    adaLoRAMasks[module] = (kept, mask.count)
                }
            } else {
                rankPattern = try (f.optionalObject("rank_pattern")?.object.pairs ?? []).map { pair in
                    guard let v = pair.value.intValue, v > 0 else { throw f.problem("rank_pattern.\(pair.key)", "must be a positive integer") }
                    return (pair.key, v)
                }
            }
            alphaPattern = try (f.optionalObject("alpha_pattern")?.object.pairs ?? []).map { pair in
                guard let v = pair.value.doubleValue else { throw f.problem("alpha_pattern.\(pair.key)", "must be a finite number") }
                return (pair.key, v)
            }
            modulesToSave = try f.has("modules_to_save") && !(f.value("modules_to_save").isNull) ? f.stringArray("modules_to_save") : []
            if let v = f.object["layers_to_transform"], !v.isNull {
                if let one = v.intValue {
                    layersToTransform = [one]
                } else {
                    layersToTransform = try f.intArray("layers_to_transform", min: 0)
                }
            } else {
                layersToTransform = nil
            }
            saveProjection = try f.optionalBool("save_projection") ?? true
            useEffectiveConv2d = try f.optionalBool("use_effective_conv2d") ?? false
            if let ff = f.object["feedforward_modules"], !ff.isNull {
                feedforwardModules = try ff.stringValue.map { [$0] } ?? f.stringArray("feedforward_modules")
            }
            baseModel = try f.optionalString("base_model_name_or_path")
            taskType = try f.optionalString("task_type")
            if let replication = f.object["layer_replication"], !replication.isNull {
                throw f.problem("layer_replication", "is set: the adapter duplicates base layers, which a weight merge cannot express")
            }
            loraBias = try f.optionalBool("lora_bias") ?? false
            if let params = f.object["target_parameters"], let list = params.arrayValue, !list.isEmpty {
                throw f.problem("target_parameters", "is set: LoRA on raw parameters (e.g. MoE experts) is not supported")
            }
            if let tokens = f.object["trainable_token_indices"], !tokens.isNull {
                throw f.problem("trainable_token_indices", "is set: trainable-token adapters are not supported")
            }
        } catch let p as JSONFields.Problem {
            throw InteropError(.invalidConfig, path, "\(p.path): \(p.message)")
        }
    }

    /// PEFT's pattern rule (`peft.utils.other.get_pattern_key`): the first key `k` in order for which
    /// the regular expression `(.*\.)?(k)$` matches the module's full name.
    static func firstMatch<V>(_ patterns: [(key: String, value: V)], module: String) -> (key: String, value: V)? {
        for p in patterns where PEFTPattern.matches(key: p.key, name: module) { return p }
        return nil
    }

    /// The rank PEFT gives `module`.
    public func rank(for module: String) -> Int { Self.firstMatch(rankPattern, module: module)?.value ?? r }

    /// The alpha PEFT gives `module`.
    public func alpha(for module: String) -> Double { Self.firstMatch(alphaPattern, module: module)?.value ?? loraAlpha }

    /// `alpha / r`, or `alpha / √r` with rsLoRA, computed as PEFT computes it (IEEE double).
    public func scale(for module: String) -> Double {
        let r = Double(rank(for: module))
        let a = alpha(for: module)
        return useRSLoRA ? a / r.squareRoot() : a / r
    }

    /// AdaLoRA's `scaling / (ranknum + 1e-5)` for `module` saved at rank `r` (PEFT 0.21
    /// `AdaLoraModel.resize_modules_by_rank_pattern`): `scaling` is `lora_alpha`, or `r` when
    /// `lora_alpha` is 0; `ranknum` is the rank before pruning (the mask's length, `init_r` without a
    /// mask), kept "exactly as the previous" — both float32 in PEFT.
    public func adaLoRAScale(module: String, savedRank r: Int) -> Double {
        let scaling = loraAlpha > 0 ? loraAlpha : Double(r)
        let ranknum = adaLoRAMasks[module].map { r > 0 ? $0.of : 0 } ?? r
        return Double(Float(scaling)) / Double(Float(ranknum) + Float(1e-5))
    }
}

/// Python-compatible matching of PEFT pattern keys.
enum PEFTPattern {
    /// `re.match(rf"(.*\.)?({key})$", name)`. Keys without regex syntax are matched literally (the
    /// common case, and the only one PEFT documents); others go through Swift's regex engine.
    static func matches(key: String, name: String) -> Bool {
        let special: Set<Character> = ["\\", "^", "$", "*", "+", "?", "(", ")", "[", "]", "{", "}", "|"]
        if !key.contains(where: { special.contains($0) }) {
            // Only "." is special here, and it matches any character.
            return literalSuffixMatch(key: Array(key), name: Array(name))
        }
        guard let regex = try? Regex("(.*\\.)?(\(key))") else { return false }
        return (try? regex.wholeMatch(in: name)) != nil
    }

    /// `(.*\.)?key$` where "." in key matches any character.
    private static func literalSuffixMatch(key: [Character], name: [Character]) -> Bool {
        func equal(at start: Int) -> Bool {
            guard name.count - start == key.count else { return false }
            for (i, k) in key.enumerated() where k != "." && k != name[start + i] { return false }
            return true
        }
        if equal(at: 0) { return true }
        // The prefix group must end with a literal dot right before the key.
        guard name.count > key.count else { return false }
        let start = name.count - key.count
        return name[start - 1] == "." && equal(at: start)
    }
}
