import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// A diffusion adapter in one `.safetensors` file, in either of the two layouts in circulation:
///
/// - **kohya** (sd-scripts, LyCORIS, diffusers' `convert_state_dict_to_kohya`, ComfyUI, A1111):
///   `<prefix><flattened module path>.<suffix>` with prefix `lora_unet_`, `lora_te_`/`lora_te1_`,
///   `lora_te2_`, `lora_te3_` or `lycoris_`, and LyCORIS's suffixes (`LyCORISModule`): LoRA, LoCon,
///   Tucker LoCon, LoHa, LoKr, DoRA, full.
/// - **diffusers** (`save_lora_weights`, and what its loader reads): `<component>.<module path>.lora_A.weight`
///   / `lora_B.weight` / `lora_magnitude_vector` with component `unet`, `text_encoder`,
///   `text_encoder_2`, `text_encoder_3` or `transformer`; the older `<…>.lora.down.weight`,
///   `<…>.lora_linear_layer.down.weight` and attention-processor keys
///   (`<unet module>.processor.to_q_lora.down.weight`, `text_encoder.<…>.to_q_lora.down.weight`).
///   The scale is `alpha / r` from a `<module>.alpha` tensor, else from the file's
///   `lora_adapter_metadata` (the `LoraConfig` per component that diffusers writes), else 1.
///
/// Modules keep the file's names (`target` = the key's module part) until `DiffusionBinding` binds
/// them to a base; `attributes["diffusion.role"]`/`["diffusion.path"]` say which component and path the
/// key names. The file's metadata (`ss_*`, `modelspec.*`, …) is kept in the adapter's metadata.
public enum DiffusionAdapter {
    public enum Layout: String, Sendable {
        case kohya
        case diffusers
    }

    /// kohya prefix → role (the pipeline component the names belong to; `""` for LyCORIS's one model).
    public static let kohyaPrefixes: [(prefix: String, role: String)] = [
        ("lora_unet_", "unet"), ("lora_te1_", "text_encoder"), ("lora_te2_", "text_encoder_2"), ("lora_te3_", "text_encoder_3"),
        ("lora_te_", "text_encoder"), ("lycoris_", ""),
    ]

    /// The file `save_lora_weights` writes into its folder.
    public static let diffusersFileName = "pytorch_lora_weights.safetensors"

    /// The components a diffusers-layout key may start with.
    public static let diffusersComponents = ["unet", "text_encoder", "text_encoder_2", "text_encoder_3", "transformer"]

    /// The layout of a file's tensor names, or nil when they are neither (then it is not such an adapter).
    public static func layout(of names: [String]) -> Layout? {
        guard !names.isEmpty else { return nil }
        if names.allSatisfy({ n in kohyaPrefixes.contains { n.hasPrefix($0.prefix) } && n.contains(".") }) { return .kohya }
        if names.allSatisfy({ diffusersKey($0) != nil }) { return .diffusers }
        return nil
    }

    /// Reads the file, or `pytorch_lora_weights.safetensors` in a folder (tensors stay memory-mapped).
    public static func read(path: String) throws -> Adapter {
        try read(file: try SafetensorsFile(path: pathKind(path) == .directory ? joinPath(path, diffusersFileName) : path))
    }

    /// Reads a safetensors file already open (`file.path` names it in messages).
    public static func read(file: SafetensorsFile) throws -> Adapter {
        let path = file.path
        guard let layout = layout(of: file.tensorNames) else {
            let odd = file.tensorNames.first { n in !kohyaPrefixes.contains { n.hasPrefix($0.prefix) } } ?? file.tensorNames.first ?? ""
            throw InteropError(.unrecognized, path, "not a kohya, LyCORIS or diffusers LoRA file (tensor \(odd) has none of their names)")
        }
        var metadata = AdapterMetadata()
        metadata.sourceFormat = layout == .kohya ? (file.tensorNames.first?.hasPrefix("lycoris_") == true ? "lycoris" : "kohya") : "diffusers"
        for (k, v) in file.metadata where !["source_format", "base_model", "architecture"].contains(k) { metadata[k] = v }
        let modules = layout == .kohya ? try kohyaModules(file) : try diffusersModules(file)
        let adapter = Adapter(metadata: metadata, modules: modules)
        do {
            try adapter.validate()
        } catch let e as ModelError {
            throw InteropError(.invalidAdapter, path, e.description)
        }
        return adapter
    }

    // MARK: kohya

    static func kohyaModules(_ file: SafetensorsFile) throws -> [AdapterModule] {
        var groups: [String: [String: SafetensorsEntry]] = [:]
        var order: [String] = []
        for e in file.entries {
            guard let (module, suffix) = LyCORISModule.split(e.name) else { throw InteropError(.unexpectedTensor, file.path, "tensor \(e.name) has no module.suffix form") }
            if groups[module] == nil {
                groups[module] = [:]
                order.append(module)
            }
            guard groups[module]?[suffix] == nil else { throw InteropError(.unexpectedTensor, file.path, "tensor \(e.name) appears twice") }
            groups[module]?[suffix] = e
        }
        return try order.map { name in
            // Safe: every name in `order` has a group.
            let entries = groups[name]!
            var tensors: [String: StoredTensor] = [:]
            var alpha: Double? = nil
            for (suffix, e) in entries {
                if suffix == "alpha" { alpha = try scalar(e, in: file, module: name); continue }
                tensors[suffix] = try file.tensor(e.name)
            }
            var m = try LyCORISModule.read(name: name, tensors: tensors, alpha: alpha, path: file.path)
            if let a = entries["alpha"] { m.attributes["lycoris.alpha_dtype"] = a.dtype.rawValue }
            // Safe: `layout` admitted only names with one of these prefixes.
            let (prefix, role) = kohyaPrefixes.first { name.hasPrefix($0.prefix) }!
            m.attributes["diffusion.role"] = role
            m.attributes["diffusion.flat"] = String(name.dropFirst(prefix.count))
            m.attributes["kohya.prefix"] = prefix
            return m
        }
    }

    /// A 0-d (or one-element) tensor of any integer or floating dtype as a Double: kohya writes
    /// `alpha` as f32/f16/bf16, diffusers' `convert_state_dict_to_kohya` as int64.
    static func scalar(_ e: SafetensorsEntry, in file: SafetensorsFile, module: String) throws -> Double {
        guard e.shape.reduce(1, *) == 1, e.shape.count <= 1 else {
            throw InteropError(.shapeMismatch, file.path, "module \(module): alpha has shape \(e.shape); it must be a single number")
        }
        let raw = file.bytes(of: e)
        switch e.dtype {
        case .f16, .bf16, .f32, .f64:
            // Safe: floating dtypes have a floatType.
            return ElementConversion.doubles(from: raw, dtype: e.dtype.floatType!)[0]
        case .i64: return Double(raw.loadUnaligned(as: Int64.self).littleEndian)
        case .i32: return Double(raw.loadUnaligned(as: Int32.self).littleEndian)
        case .i16: return Double(raw.loadUnaligned(as: Int16.self).littleEndian)
        case .i8: return Double(raw.loadUnaligned(as: Int8.self))
        case .u8: return Double(raw.loadUnaligned(as: UInt8.self))
        default: throw InteropError(.unsupported, file.path, "module \(module): alpha has dtype \(e.dtype.rawValue)")
        }
    }

    // MARK: diffusers

    /// The factor roles of diffusers-layout keys.
    enum Factor: String {
        case down, up, magnitude, alpha
    }

    /// Key suffix → factor, longest first where one ends another.
    static let diffusersSuffixes: [(suffix: String, factor: Factor)] = [
        (".lora_A.weight", .down), (".lora_B.weight", .up), (".lora_magnitude_vector.weight", .magnitude), (".lora_magnitude_vector", .magnitude),
        (".lora_linear_layer.down.weight", .down), (".lora_linear_layer.up.weight", .up),
        (".lora.down.weight", .down), (".lora.up.weight", .up), (".alpha", .alpha),
    ]

    /// The attention-processor layers (`to_q_lora`) and the layers they stand for in the UNet and in a
    /// CLIP text encoder.
    static let processorLayers: [(old: String, unet: String, text: String)] = [
        ("to_q_lora", "to_q", "q_proj"), ("to_k_lora", "to_k", "k_proj"), ("to_v_lora", "to_v", "v_proj"), ("to_out_lora", "to_out.0", "out_proj"),
    ]

    /// (role, module path, factor) of a diffusers-layout key; nil when it is not one.
    static func diffusersKey(_ key: String) -> (role: String, path: String, factor: Factor)? {
        var role = "unet"
        var rest = Substring(key)
        if let dot = key.firstIndex(of: "."), diffusersComponents.contains(String(key[..<dot])) {
            role = String(key[..<dot])
            rest = key[key.index(after: dot)...]
        } else if !key.contains(".processor.") {
            return nil  // only attention-processor files omit the component
        }
        for (old, unet, text) in processorLayers {
            for (s, f) in [(".\(old).down.weight", Factor.down), (".\(old).up.weight", Factor.up)] where rest.hasSuffix(s) {
                var module = String(rest.dropLast(s.count))
                if module.hasSuffix(".processor") { module.removeLast(".processor".count) }
                guard !module.isEmpty else { return nil }
                return (role, module + "." + (role == "unet" || role == "transformer" ? unet : text), f)
            }
        }
        for (s, f) in diffusersSuffixes where rest.hasSuffix(s) {
            let module = String(rest.dropLast(s.count))
            return module.isEmpty ? nil : (role, module, f)
        }
        return nil
    }

    static func diffusersModules(_ file: SafetensorsFile) throws -> [AdapterModule] {
        var groups: [String: (role: String, path: String, parts: [Factor: SafetensorsEntry])] = [:]
        var order: [String] = []
        for e in file.entries {
            // Safe: `layout` admitted only names `diffusersKey` reads.
            let (role, path, factor) = diffusersKey(e.name)!
            let name = role + "." + path
            if groups[name] == nil {
                groups[name] = (role, path, [:])
                order.append(name)
            }
            guard groups[name]?.parts[factor] == nil else { throw InteropError(.unexpectedTensor, file.path, "module \(name) has two \(factor.rawValue) tensors (\(e.name))") }
            groups[name]?.parts[factor] = e
        }
        let configs = try componentConfigs(file)
        return try order.map { name in
            // Safe: every name in `order` has a group.
            let g = groups[name]!
            guard let down = g.parts[.down], let up = g.parts[.up] else {
                throw InteropError(.missingTensor, file.path, "module \(name) needs both LoRA factors (has \(g.parts.keys.map(\.rawValue).sorted().joined(separator: ", ")))")
            }
            let tensors = ["lora_down.weight": try file.tensor(down.name), "lora_up.weight": try file.tensor(up.name)]
            let rank = tensors["lora_down.weight"]?.shape.first ?? 0
            var alpha: Double? = nil
            if let a = g.parts[.alpha] {
                alpha = try scalar(a, in: file, module: name)
            } else if let config = configs[g.role] {
                guard config.rank(for: g.path) == rank else {
                    throw InteropError(.shapeMismatch, file.path, "module \(name): lora_adapter_metadata gives rank \(config.rank(for: g.path)) but the tensors have rank \(rank)")
                }
                alpha = config.scale(for: g.path) * Double(rank)
            }
            var m = try LyCORISModule.read(name: name, tensors: tensors, alpha: alpha, path: file.path)
            if let mag = g.parts[.magnitude] {
                // PEFT's DoRA: one magnitude per output, no epsilon.
                let t = try file.tensor(mag.name)
                guard t.elementCount == m.outFeatures else {
                    throw InteropError(.shapeMismatch, file.path, "module \(name): lora_magnitude_vector has \(t.elementCount) values for \(m.outFeatures) outputs")
                }
                m.doraMagnitude = t.reshaped([m.outFeatures])
                m.doraAxis = .out
                m.doraEpsilon = 0
            }
            m.target = name + ".weight"
            m.attributes = ["diffusion.role": g.role, "diffusion.path": g.path, "diffusers.down": down.name]
            return m
        }
    }

    /// diffusers' `lora_adapter_metadata`: each component's `LoraConfig` under `<component>.<field>` keys.
    static func componentConfigs(_ file: SafetensorsFile) throws -> [String: PEFTConfig] {
        guard let text = file.metadata.first(where: { $0.key == "lora_adapter_metadata" })?.value else { return [:] }
        let json: JSONValue
        do {
            json = try JSONParser.parse(Array(text.utf8))
        } catch {
            throw InteropError(.invalidConfig, file.path, "lora_adapter_metadata is not JSON: \(error)")
        }
        guard let root = json.objectValue else { throw InteropError(.invalidConfig, file.path, "lora_adapter_metadata is not a JSON object") }
        var perRole: [String: [(String, JSONValue)]] = [:]
        for (key, value) in root.pairs {
            guard let dot = key.firstIndex(of: ".") else { continue }
            perRole[String(key[..<dot]), default: []].append((String(key[key.index(after: dot)...]), value))
        }
        var out: [String: PEFTConfig] = [:]
        for (role, pairs) in perRole {
            var fields = JSONObject(pairs)
            if fields["peft_type"] == nil { fields["peft_type"] = JSONValue("LORA") }
            out[role] = try PEFTConfig(json: .object(fields), path: file.path + " (lora_adapter_metadata, \(role))")
        }
        return out
    }
}
