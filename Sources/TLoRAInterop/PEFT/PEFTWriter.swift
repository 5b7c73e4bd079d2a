import TLoRAIO
import TLoRAModel

/// Writes an adapter as a PEFT LoRA directory that `PeftModel.from_pretrained` loads.
///
/// Every module must be low-rank (convert tensor trains and Tucker slices with `to-lora` first).
/// When the adapter came from PEFT and its config still describes every module's rank and scale,
/// that config is written back unchanged and the tensors bit for bit; otherwise a config is built
/// whose `rank_pattern`/`alpha_pattern` reproduce each module's rank and exact scale.
public enum PEFTWriter {
    /// - Parameter freshConfig: build the config from the modules alone (keeping only the original's
    ///   `task_type`), as a serving target needs: no `bias`, `modules_to_save` or other training
    ///   options of the original survive.
    public static func write(_ adapter: Adapter, to directory: String, overwrite: Bool, freshConfig: Bool = false) throws {
        let (config, tensors) = try layout(adapter, path: directory, freshConfig: freshConfig)
        let out = try AtomicDirectoryWriter(destination: directory, overwrite: overwrite)
        let configFile = try AtomicFileWriter(destination: out.path(for: PEFTReader.configName), overwrite: false)
        try configFile.write(JSONWriter.bytes(.object(config), indent: 2) + [0x0A])
        try configFile.commit()
        // In the order PEFT's own save (the safetensors library) stores them: a round trip is byte-exact.
        try SafetensorsWriter.write(SafetensorsWriter.referenceOrder(tensors), metadata: [("format", "pt")],
                                    to: out.path(for: PEFTReader.safetensorsName), overwrite: false)
        try out.commit()
    }

    /// The config and the state dict (in order) that represent `adapter`.
    public static func layout(_ adapter: Adapter, path: String, freshConfig: Bool = false) throws -> (JSONObject, [(name: String, tensor: StoredTensor)]) {
        if let type = nativeType(of: adapter), type != "LORA" { return try structuredLayout(adapter, type: type, path: path) }
        var tensors: [(name: String, tensor: StoredTensor)] = []
        var ranks: [(String, Int, Double)] = []
        let loraBias = adapter.modules.contains { $0.biasDelta != nil }
        for m in adapter.modules {
            guard case .lowRank(let a, let b) = m.update else {
                throw InteropError(.unsupported, path, "module \(m.name) is a \(m.update.kind.rawValue) update; PEFT holds only low-rank ones (run `tlora convert to-lora` first)")
            }
            let prefix = (m.attributes["peft.key_prefix"] ?? PEFTReader.keyPrefix) + m.name
            switch m.kind {
            case .embedding:
                guard m.doraMagnitude == nil else { throw InteropError(.unsupported, path, "module \(m.name): PEFT has no DoRA for embeddings") }
                guard m.biasDelta == nil else { throw InteropError(.unsupported, path, "module \(m.name): PEFT has no lora_bias for embeddings") }
                tensors.append((prefix + ".lora_embedding_A", a))
                tensors.append((prefix + ".lora_embedding_B", b))
            case .linear:
                guard m.doraAxis == .out else {
                    throw InteropError(.unsupported, path, "module \(m.name): PEFT has no DoRA on the input axis (export with --format lycoris)")
                }
                // A convolution's factors as PEFT's conv layers hold them: [r, in, k…] and [out, r, 1…].
                let ones = [Int](repeating: 1, count: m.kernel.count)
                tensors.append((prefix + ".lora_A.weight", m.kernel.isEmpty ? a : a.reshaped([a.shape[0], m.inChannels] + m.kernel)))
                tensors.append((prefix + ".lora_B.weight", m.kernel.isEmpty ? b : b.reshaped(b.shape + ones)))
                // PEFT's lora_bias gives every lora_B a bias: zeros where this layer's bias did not change.
                if loraBias { tensors.append((prefix + ".lora_B.bias", m.biasDelta ?? StoredTensor([Float](repeating: 0, count: m.outFeatures), shape: [m.outFeatures], dtype: b.dtype))) }
                if let mag = m.doraMagnitude { tensors.append((prefix + ".lora_magnitude_vector", mag)) }
            }
            ranks.append((m.name, a.shape[0], m.scale))
        }
        for r in adapter.replacedTensors {
            let key = r.sourceName.flatMap { $0.hasPrefix(PEFTReader.keyPrefix) ? $0 : nil } ?? PEFTReader.keyPrefix + r.target
            tensors.append((key, r.value))
        }
        return (try config(for: adapter, ranks: ranks, path: path, fresh: freshConfig), tensors)
    }

    private static func config(for adapter: Adapter, ranks: [(name: String, rank: Int, scale: Double)], path: String, fresh: Bool) throws -> JSONObject {
        // The original config, if it still tells the truth about every module.
        var original: PEFTConfig? = nil
        if let text = adapter.metadata["peft.adapter_config"], let json = try? JSONParser.parse(text) {
            original = try? PEFTConfig(json: json, path: path)
        }
        let useDoRA = adapter.modules.contains { $0.doraMagnitude != nil }
        let loraBias = adapter.modules.contains { $0.biasDelta != nil }
        let fanInFanOut = adapter.modules.contains { $0.kind == .linear && $0.layout == .inOut }
        if !fresh, let original, original.useDoRA == useDoRA, original.loraBias == loraBias, original.fanInFanOut == fanInFanOut,
           ranks.allSatisfy({ original.rank(for: $0.name) == $0.rank && original.scale(for: $0.name) == $0.scale }) {
            return original.json
        }
        let patterns = try rankAndAlphaPatterns(ranks, path: path)
        if fanInFanOut, adapter.modules.contains(where: { $0.kind == .linear && $0.layout == .outIn }) {
            throw InteropError(.unsupported, path, "PEFT's fan_in_fan_out applies to all layers; this adapter mixes Conv1D-style and Linear layers")
        }
        // Keep everything else the original said (target_modules, bias, modules_to_save, task…).
        var o = (fresh ? nil : original?.json) ?? JSONObject()
        if fresh || original == nil {
            o["peft_type"] = JSONValue("LORA")
            o["task_type"] = original?.json["task_type"] ?? adapter.metadata["task_type"].map(JSONValue.init) ?? .null
            o["base_model_name_or_path"] = adapter.metadata.baseModel.map(JSONValue.init) ?? .null
            o["lora_dropout"] = JSONValue(0)
            o["target_modules"] = JSONValue(adapter.modules.map(\.name))
            o["bias"] = JSONValue("none")
            o["modules_to_save"] = adapter.replacedTensors.isEmpty ? .null : JSONValue(adapter.replacedTensors.map { String($0.target.split(separator: ".").dropLast().joined(separator: ".")) })
            o["init_lora_weights"] = JSONValue(true)
            o["inference_mode"] = JSONValue(true)
            o["layers_to_transform"] = .null
            o["layers_pattern"] = .null
        }
        if fresh, !adapter.replacedTensors.isEmpty {
            // PEFT (and vLLM's check) name a saved head by its last path component, e.g. "classifier".
            var leaves: [String] = []
            for r in adapter.replacedTensors {
                let leaf = String(r.target.split(separator: ".").dropLast().last ?? "")
                if !leaves.contains(leaf) { leaves.append(leaf) }
            }
            o["modules_to_save"] = JSONValue(leaves)
        }
        o["r"] = JSONValue(patterns.r)
        o["lora_alpha"] = JSONValue(patterns.alpha)
        o["fan_in_fan_out"] = JSONValue(fanInFanOut)
        o["use_rslora"] = JSONValue(false)
        o["use_dora"] = JSONValue(useDoRA)
        o["lora_bias"] = JSONValue(loraBias)
        o["rank_pattern"] = .object(patterns.rankPattern)
        o["alpha_pattern"] = .object(patterns.alphaPattern)
        return o
    }

    /// The most common rank and scale as `r` and alpha, `rank_pattern`/`alpha_pattern` entries for
    /// the rest, so that PEFT's `alpha / r` gives each module its exact scale.
    static func rankAndAlphaPatterns(_ ranks: [(name: String, rank: Int, scale: Double)], path: String) throws
        -> (r: Int, alpha: Double, rankPattern: JSONObject, alphaPattern: JSONObject) {
        var counts: [String: (rank: Int, scale: Double, count: Int)] = [:]
        for r in ranks { counts["\(r.rank)/\(r.scale)", default: (r.rank, r.scale, 0)].count += 1 }
        let common = counts.values.max { ($0.count, -$0.rank) < ($1.count, -$1.rank) } ?? (8, 1, 0)
        let alpha = exactAlpha(rank: common.rank, scale: common.scale)
        var rankPattern = JSONObject()
        var alphaPattern = JSONObject()
        for r in ranks {
            if r.rank != common.rank { rankPattern[r.name] = JSONValue(r.rank) }
            let a = exactAlpha(rank: r.rank, scale: r.scale)
            if a / Double(r.rank) != alpha / Double(common.rank) || r.rank != common.rank { alphaPattern[r.name] = JSONValue(a) }
            // Some scales (α/√r after a rank change) are no double α divided by r: the nearest is within
            // 2 ulp, 1e-16 relative, far below the factors' own rounding.
            guard abs(a / Double(r.rank) - r.scale) <= 2 * r.scale.ulp else {
                throw InteropError(.unsupported, path, "module \(r.name): no alpha gives scale \(r.scale) at rank \(r.rank)")
            }
        }
        return (common.rank, alpha, rankPattern, alphaPattern)
    }

    /// An alpha with `alpha / rank == scale` in IEEE double, as PEFT computes it.
    static func exactAlpha(rank: Int, scale: Double) -> Double {
        let r = Double(rank)
        var a = scale * r
        for _ in 0..<4 where a / r != scale {
            a = a / r < scale ? a.nextUp : a.nextDown
        }
        return a
    }
}
