import TLoRAIO
import TLoRAModel

/// PEFT's LOKR, LOHA, ADALORA, VERA and IA3 directories (the layouts `PEFTReader+Structured` reads).
///
/// A round trip is bit-exact: tensors keep their bytes and PEFT's shapes (a conv's full `lokr_w2`
/// `[b, d, kh, kw]`, `lora_E` `[r, 1]`, `ia3_l` `[out, 1]` / `[1, in]`), and the original
/// `adapter_config.json` is written back unchanged when it still describes every module. Otherwise
/// (an adapter from LyCORIS, or edited) a config is built whose `r`, `alpha`, `rank_pattern`,
/// `alpha_pattern` — and for LoKr `decompose_factor`, `decompose_both`, `use_effective_conv2d` —
/// make PEFT create exactly these factor shapes and scales; when none does, the export is refused
/// with the reason (then `tlora export` converts to LoRA).
extension PEFTWriter {
    /// The PEFT type that holds every module natively, or nil when the adapter mixes forms or has
    /// parts PEFT cannot hold (tensor trains, Tucker slices, dense updates, bias changes, DoRA on the
    /// input axis, DoRA on anything but LoRA).
    public static func nativeType(of adapter: Adapter) -> String? {
        var types = Set<String>()
        for m in adapter.modules {
            guard m.biasDelta == nil, m.doraAxis == .out else { return nil }
            switch m.update {
            case .lowRank: types.insert("LORA")
            case .kronecker: types.insert("LOKR")
            case .hadamard: types.insert("LOHA")
            case .diagonalLowRank: types.insert("ADALORA")
            case .vera: types.insert("VERA")
            case .featureScale: types.insert("IA3")
            default: return nil
            }
            if m.doraMagnitude != nil, types != ["LORA"] { return nil }
        }
        return types.count <= 1 ? (types.first ?? "LORA") : nil
    }

    static func structuredLayout(_ adapter: Adapter, type: String, path: String) throws -> (JSONObject, [(name: String, tensor: StoredTensor)]) {
        func fail(_ m: AdapterModule, _ problem: String) -> InteropError { InteropError(.unsupported, path, "module \(m.name): \(problem)") }
        var tensors: [(name: String, tensor: StoredTensor)] = []
        for m in adapter.modules {
            let prefix = (m.attributes["peft.key_prefix"] ?? PEFTReader.keyPrefix) + m.name + "."
            func add(_ suffix: String, _ t: StoredTensor) { tensors.append((prefix + suffix, t)) }
            let ones = [Int](repeating: 1, count: m.kernel.count)
            switch m.update {
            case .kronecker(let k):
                switch k.w1 {
                case .full(let w): add("lokr_w1", w)
                case .lowRank(let a, let b): add("lokr_w1_a", b); add("lokr_w1_b", a)
                case .tucker: throw fail(m, "W1 has a Tucker core")
                }
                switch k.w2 {
                case .full(let w): add("lokr_w2", m.kernel.isEmpty ? w : w.reshaped([w.shape[0], w.shape[1] / m.kernelSize] + m.kernel))
                case .lowRank(let a, let b): add("lokr_w2_a", b); add("lokr_w2_b", a)
                case .tucker(let t): add("lokr_t2", t.core); add("lokr_w2_a", t.b.transposed()); add("lokr_w2_b", t.a)
                }
            case .hadamard(let h):
                for (i, p) in [(1, h.p1), (2, h.p2)] {
                    switch p {
                    case .lowRank(let a, let b): add("hada_w\(i)_a", b); add("hada_w\(i)_b", a)
                    case .tucker(let t): add("hada_t\(i)", t.core); add("hada_w\(i)_a", t.b.transposed()); add("hada_w\(i)_b", t.a)
                    case .full: throw fail(m, "a Hadamard factor is a full matrix")
                    }
                }
                // PEFT orders a LoHa's tensors w1_a, w1_b, w2_a, w2_b, t1, t2 within its state dict;
                // the names, not the order, are what it loads.
            case .diagonalLowRank(let a, let b, let e):
                add("lora_A", a); add("lora_B", b); add("lora_E", e.reshaped([e.elementCount, 1]))
            case .vera(let v):
                add("vera_lambda_b", v.lambdaB); add("vera_lambda_d", v.lambdaD)
            case .featureScale(let f):
                let n = f.vector.elementCount
                var shape = f.axis == .out ? [n, 1] + ones : [1, n] + ones
                if m.layout == .inOut { shape = [shape[1], shape[0]] }
                add("ia3_l", f.vector.reshaped(shape))
            default:
                throw fail(m, "a \(m.update.kind.rawValue) update is not a PEFT \(type) module")
            }
        }
        if type == "VERA" {
            guard let pair = adapter.projections.first, adapter.projections.count == 1 else {
                throw InteropError(.unsupported, path, "PEFT's VeRA has exactly one pair of shared projections; this adapter has \(adapter.projections.count)")
            }
            tensors.append((PEFTReader.veraShared[0], pair.a))
            tensors.append((PEFTReader.veraShared[1], pair.b))
        }
        for r in adapter.replacedTensors {
            let key = r.sourceName.flatMap { $0.hasPrefix(PEFTReader.keyPrefix) ? $0 : nil } ?? PEFTReader.keyPrefix + r.target
            tensors.append((key, r.value))
        }
        return (try structuredConfig(adapter, type: type, path: path), tensors)
    }

    /// The rank PEFT's `r` must be for a module: the inner dimension of its decomposed factors (nil
    /// for a LoKr whose factors are both full: any `r` that keeps them full).
    static func peftRank(_ m: AdapterModule) -> Int? {
        switch m.update {
        case .kronecker(let k):
            if case .lowRank(let a, _) = k.w2 { return a.shape[0] }
            if case .tucker(let t) = k.w2 { return t.core.shape[0] }
            if case .lowRank(let a, _) = k.w1 { return a.shape[0] }
            return nil
        case .hadamard(let h):
            if case .lowRank(let a, _) = h.p1 { return a.shape[0] }
            if case .tucker(let t) = h.p1 { return t.core.shape[0] }
            return nil
        default: return nil
        }
    }

    static func structuredConfig(_ adapter: Adapter, type: String, path: String) throws -> JSONObject {
        var original: PEFTConfig? = nil
        if let text = adapter.metadata["peft.adapter_config"], let json = try? JSONParser.parse(text) {
            original = try? PEFTConfig(json: json, path: path)
        }
        if let original, original.peftType == type, try describes(original, adapter) { return original.json }
        var o = JSONObject()
        o["peft_type"] = JSONValue(type)
        o["task_type"] = adapter.metadata["task_type"].map(JSONValue.init) ?? .null
        o["base_model_name_or_path"] = adapter.metadata.baseModel.map(JSONValue.init) ?? .null
        o["target_modules"] = JSONValue(adapter.modules.map(\.name))
        o["modules_to_save"] = adapter.replacedTensors.isEmpty ? .null
            : JSONValue(adapter.replacedTensors.map { String($0.target.split(separator: ".").dropLast().joined(separator: ".")) })
        o["inference_mode"] = JSONValue(true)
        let fanInFanOut = adapter.modules.contains { $0.layout == .inOut }
        if fanInFanOut, adapter.modules.contains(where: { $0.layout == .outIn }) {
            throw InteropError(.unsupported, path, "PEFT's fan_in_fan_out applies to all layers; this adapter mixes Conv1D-style and Linear layers")
        }
        switch type {
        case "LOKR", "LOHA":
            guard !fanInFanOut else { throw InteropError(.unsupported, path, "PEFT's \(type) has no fan_in_fan_out") }
            // A LoKr with two full factors takes any r that keeps them full: one as large as its factors.
            let ranks = adapter.modules.map { m -> (name: String, rank: Int, scale: Double) in
                if let r = peftRank(m) { return (m.name, r, m.scale) }
                var r = 1
                if case .kronecker(let k) = m.update {
                    for t in k.w1.tensors + k.w2.tensors { r = max(r, t.shape[0], t.shape[1] / max(m.kernelSize, 1)) }
                }
                return (m.name, r, m.scale)
            }
            let patterns = try rankAndAlphaPatterns(ranks, path: path)
            o["r"] = JSONValue(patterns.r)
            o["alpha"] = JSONValue(patterns.alpha)
            o["rank_pattern"] = .object(patterns.rankPattern)
            o["alpha_pattern"] = .object(patterns.alphaPattern)
            o["rank_dropout"] = JSONValue(0)
            o["module_dropout"] = JSONValue(0)
            o["init_weights"] = JSONValue(true)
            let tucker = adapter.modules.contains { m in
                if case .kronecker(let k) = m.update, case .tucker = k.w2 { return true }
                if case .hadamard(let h) = m.update, case .tucker = h.p1 { return true }
                return false
            }
            o["use_effective_conv2d"] = JSONValue(tucker)
            if type == "LOKR" {
                let config = try PEFTConfig(json: .object(o), path: path)
                guard let (factor, both) = LoKrShapes.settings(for: adapter.modules, config: config, tucker: tucker) else {
                    throw InteropError(.unsupported, path, "no PEFT LoKr configuration (decompose_factor, decompose_both, r) makes PEFT create these Kronecker factor shapes")
                }
                o["decompose_factor"] = JSONValue(factor)
                o["decompose_both"] = JSONValue(both)
                o["rank_dropout_scale"] = JSONValue(false)
            }
        case "ADALORA":
            throw InteropError(.unsupported, path, "an AdaLoRA adapter's config cannot be rebuilt (its rank allocator's masks are gone); export to PEFT needs its own adapter_config.json")
        case "VERA":
            o["r"] = JSONValue(adapter.projections.first?.rank ?? 0)
            o["save_projection"] = JSONValue(true)
            o["projection_prng_key"] = JSONValue(0)
            o["vera_dropout"] = JSONValue(0)
            o["d_initial"] = JSONValue(0.1)
            o["fan_in_fan_out"] = JSONValue(fanInFanOut)
            o["bias"] = JSONValue("none")
            o["init_weights"] = JSONValue(true)
        default:  // IA3
            o["feedforward_modules"] = JSONValue(adapter.modules.filter { if case .featureScale(let f) = $0.update { return f.axis == .in }; return false }.map(\.name))
            o["fan_in_fan_out"] = JSONValue(fanInFanOut)
            o["init_ia3_weights"] = JSONValue(true)
        }
        // The config just built must read back as these modules.
        guard try describes(try PEFTConfig(json: .object(o), path: path), adapter) else {
            throw InteropError(.unsupported, path, "no PEFT \(type) configuration reproduces every module's rank and scale exactly")
        }
        return o
    }

    /// Whether `config` gives every module of `adapter` its rank, shapes and scale.
    static func describes(_ config: PEFTConfig, _ adapter: Adapter) throws -> Bool {
        for m in adapter.modules {
            switch m.update {
            case .kronecker:
                guard config.scale(for: m.name) == m.scale else { return false }
                guard LoKrShapes.matches(m, config: config) else { return false }
            case .hadamard:
                guard config.scale(for: m.name) == m.scale, config.rank(for: m.name) == peftRank(m) else { return false }
            case .diagonalLowRank(let a, _, _):
                let r = a.shape[0]
                guard (config.adaLoRAMasks[m.name]?.kept ?? config.r) == r, config.adaLoRAScale(module: m.name, savedRank: r) == m.scale else { return false }
            case .vera(let v):
                guard config.r == adapter.projectionPair(named: v.projections)?.rank else { return false }
            case .featureScale(let f):
                let ff = config.feedforwardModules.contains { PEFTPattern.matches(key: $0, name: m.name) }
                guard ff == (f.axis == .in) else { return false }
            default: return false
            }
            guard config.fanInFanOut == (m.layout == .inOut) else { return false }
        }
        return true
    }
}

/// The factor shapes PEFT 0.21's `LoKrLayer.update_layer` creates (a copy of LyCORIS's rules with
/// PEFT's own `factorization`, which does not swap when `dimension % factor == 0`).
enum LoKrShapes {
    /// PEFT's `factorization(dimension, factor)`.
    static func factorization(_ dimension: Int, _ factor: Int) -> (Int, Int) {
        if factor > 0, dimension % factor == 0 { return (factor, dimension / factor) }
        let limit = factor == -1 ? dimension : factor
        var (m, n) = (1, dimension)
        let length = m + n
        while m < n {
            var newM = m + 1
            while dimension % newM != 0 { newM += 1 }
            let newN = dimension / newM
            if newM + newN > length || newM > limit { break }
            (m, n) = (newM, newN)
        }
        return m > n ? (n, m) : (m, n)
    }

    /// Whether PEFT, given `config`, creates exactly `m`'s factors.
    static func matches(_ m: AdapterModule, config: PEFTConfig, factor: Int? = nil, decomposeBoth: Bool? = nil) -> Bool {
        guard case .kronecker(let k) = m.update else { return false }
        let factor = factor ?? ((config.json["decompose_factor"]?.intValue) ?? -1)
        let both = decomposeBoth ?? ((config.json["decompose_both"]?.boolValue) ?? false)
        let r = config.rank(for: m.name)
        let (a, b) = factorization(m.outFeatures, factor), (c, d) = factorization(m.inChannels, factor)
        let half = { (x: Int, y: Int) in Double(r) < Double(max(x, y)) / 2 }
        let useW1 = !(both && half(a, c))
        let conv = !m.kernel.isEmpty
        let useW2 = !half(b, d)
        let effective = config.useEffectiveConv2d && conv && m.kernel.contains { $0 != 1 }
        switch (useW1, k.w1) {
        case (true, .full(let w)): guard w.shape == [a, c] else { return false }
        case (false, .lowRank(let x, let y)): guard x.shape == [r, c], y.shape == [a, r] else { return false }
        default: return false
        }
        switch (useW2, k.w2) {
        case (true, .full(let w)): return w.shape == [b, d * m.kernelSize]
        case (false, .lowRank(let x, let y)): return !effective && x.shape == [r, d * m.kernelSize] && y.shape == [b, r]
        case (false, .tucker(let t)): return effective && t.core.shape.prefix(2) == [r, r] && t.b.shape == [b, r] && t.a.shape == [r, d]
        default: return false
        }
    }

    /// A `decompose_factor` and `decompose_both` under which PEFT creates every module's shapes.
    static func settings(for modules: [AdapterModule], config: PEFTConfig, tucker: Bool) -> (Int, Bool)? {
        var candidates = [-1]
        for m in modules {
            guard case .kronecker(let k) = m.update else { continue }
            switch k.w1 {
            case .full(let w): candidates += w.shape
            case .lowRank(let a, let b): candidates += [b.shape[0], a.shape[1]]
            case .tucker: break
            }
        }
        var seen = Set<Int>()
        for f in candidates where seen.insert(f).inserted {
            for both in [false, true] where modules.allSatisfy({ matches($0, config: config, factor: f, decomposeBoth: both) }) {
                return (f, both)
            }
        }
        return nil
    }
}
