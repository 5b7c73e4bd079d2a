import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// Writes diffusion adapters for the tools that load them:
///
/// - **kohya** (`lora_unet_…` keys, LyCORIS suffixes, `alpha`, the file's `ss_*`/`modelspec.*`
///   metadata): what sd-scripts, LyCORIS, ComfyUI, A1111 and diffusers' `load_lora_weights` read.
///   Names follow a base's own layout when one is given — a pipeline's diffusers names, a single
///   file's original SGM UNet names (as sd-scripts' SDXL trainer writes them) and Hugging Face CLIP
///   names — and otherwise the names the adapter was read with.
/// - **diffusers** (`<component>.<module>.lora_A.weight` / `lora_B.weight` / `lora_magnitude_vector`
///   with the `LoraConfig` of each component in `lora_adapter_metadata`, in
///   `pytorch_lora_weights.safetensors`): what `save_lora_weights` writes and `load_lora_weights`
///   reads, scales exact through `lora_alpha` and `alpha_pattern`.
public enum DiffusionExport {
    /// A module's place: its component role and its path in diffusers naming and in the base's own.
    public struct Name: Sendable, Equatable {
        public var role: String
        public var diffusers: String?
        public var own: String?
    }

    /// Each module's name, from the base it is bound to (`DiffusionBinding`; `rows` for fused targets)
    /// or, without a base, from the names the file gave it. `unet` is `UNetSpellings(of: base)`, built
    /// here unless the caller names many adapters against one base.
    public static func names(_ adapter: Adapter, base: ModelBase?, rows: [String: Range<Int>] = [:], unet: UNetSpellings? = nil) -> [Name?] {
        let unet = (unet ?? base.map(UNetSpellings.init(of:)))?.names
        return adapter.modules.map { m in
            guard let base else {
                guard let role = m.attributes["diffusion.role"] else { return nil }
                return Name(role: role, diffusers: m.attributes["diffusion.path"], own: m.attributes["diffusion.path"])
            }
            return name(of: m.target, rows: rows[m.name], in: base, unet: unet)
        }
    }

    /// A base's UNet names in both spellings (diffusers and SGM); `names` is nil for a base without a UNet.
    public struct UNetSpellings: Sendable {
        let names: UNetNames?

        public init(of base: ModelBase) {
            switch base.layout {
            case .singleFile:
                let prefix = "model.diffusion_model."
                names = UNetNames(sgmNames: base.components[0].checkpoint.tensorNames.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) })
            case .pipeline:
                names = base.component(named: "unet").flatMap { UNetNames(diffusersNames: $0.checkpoint.tensorNames) }
            case .checkpoint:
                names = nil
            }
        }
    }

    static func name(of tensor: String, rows: Range<Int>?, in base: ModelBase, unet: UNetNames?) -> Name? {
        func module(_ t: String) -> String? { t.hasSuffix(".weight") ? String(t.dropLast(".weight".count)) : nil }
        switch base.layout {
        case .pipeline:
            guard let (c, t) = base.locate(tensor), let path = module(t) else { return nil }
            return Name(role: base.components[c].name, diffusers: path, own: path)
        case .singleFile:
            guard let (prefix, role, scheme) = SingleFileNames.split(tensor) else { return nil }
            let inner = String(tensor.dropFirst(prefix.count))
            switch scheme {
            case .sgmUNet:
                guard let path = module(inner) else { return nil }
                return Name(role: role, diffusers: unet?.diffusers(fromSGM: path), own: path)
            case .hfCLIP, .native:
                guard let path = module(inner) else { return nil }
                return Name(role: role, diffusers: path, own: path)
            case .openCLIP:
                let shape = base.entry(tensor)?.shape ?? []
                guard let alias = CLIPNames.hfAliases(ofOpenCLIP: inner, shape: shape).first(where: { $0.rows == rows }) else { return nil }
                // transformers' CLIPTextModelWithProjection names (`text_model.` included), which
                // sd-scripts' SDXL LoRAs use for this encoder.
                return Name(role: role, diffusers: "text_model." + alias.path, own: "text_model." + alias.path)
            }
        case .checkpoint:
            return nil
        }
    }

    /// kohya's prefix for a role; `lora_te1_` for the first text encoder when there is a second.
    static func kohyaPrefix(role: String, twoTextEncoders: Bool) -> String? {
        switch role {
        case "unet", "transformer": return "lora_unet_"
        case "text_encoder": return twoTextEncoders ? "lora_te1_" : "lora_te_"
        case "text_encoder_2": return "lora_te2_"
        case "text_encoder_3": return "lora_te3_"
        case "": return "lycoris_"
        default: return nil
        }
    }

    /// The kohya key of each module: the file's own when no base renames it.
    public static func kohyaKeys(_ adapter: Adapter, names: [Name?], renamed: Bool, path: String) throws -> [String] {
        let twoTextEncoders = names.contains { $0?.role == "text_encoder_2" } || base2(adapter)
        var seen = Set<String>()
        return try zip(adapter.modules, names).map { m, name in
            let key: String
            if !renamed, let prefix = m.attributes["kohya.prefix"], let flat = m.attributes["diffusion.flat"] {
                key = prefix + flat
            } else if let name, let own = name.own, let prefix = kohyaPrefix(role: name.role, twoTextEncoders: twoTextEncoders) {
                key = prefix + ModuleNameIndex.flatten(own)
            } else {
                throw InteropError(.needsOption, path, "module \(m.name) has no kohya name: give --base, the base model it was trained for")
            }
            guard seen.insert(key).inserted else { throw InteropError(.unmatchedNames, path, "two modules would both be written as \(key)") }
            return key
        }
    }

    /// True when the adapter was read from a file that already used `lora_te1_`/`lora_te2_`.
    static func base2(_ adapter: Adapter) -> Bool {
        adapter.modules.contains { $0.attributes["kohya.prefix"] == "lora_te2_" || $0.attributes["diffusion.role"] == "text_encoder_2" }
    }

    /// Writes a kohya/LyCORIS `.safetensors` file atomically.
    public static func writeKohya(_ adapter: Adapter, keys: [String], to path: String, overwrite: Bool) throws {
        var tensors: [(name: String, tensor: StoredTensor)] = []
        for (m, key) in zip(adapter.modules, keys) {
            for (suffix, t) in try LyCORISModule.tensors(for: m, path: path) { tensors.append((key + "." + suffix, t)) }
        }
        // sd-scripts' and modelspec's descriptions travel; `sshs_*` hashes of the old file's bytes would lie.
        let kept = adapter.metadata.entries.filter { e in ["ss_", "modelspec."].contains { e.key.hasPrefix($0) } }
        let out = try AtomicFileWriter(destination: path, overwrite: overwrite, kind: SafetensorsWriter.outputKind)
        try SafetensorsWriter.write(tensors, metadata: kept.map { ($0.key, $0.value) } + [(SafetensorsWriter.markerKey, "export kohya")], into: out)
        try out.commit()
    }

    /// Writes the diffusers layout: a folder holding `pytorch_lora_weights.safetensors`, or that one file
    /// when `path` ends in `.safetensors`. Every module must be low-rank.
    public static func writeDiffusers(_ adapter: Adapter, names: [Name?], to path: String, overwrite: Bool) throws {
        var tensors: [(name: String, tensor: StoredTensor)] = []
        var perRole: [String: [(path: String, rank: Int, scale: Double, dora: Bool)]] = [:]
        var roles: [String] = []
        var seen = Set<String>()
        for (m, name) in zip(adapter.modules, names) {
            guard let name, let module = name.diffusers, DiffusionAdapter.diffusersComponents.contains(name.role) else {
                throw InteropError(.needsOption, path, "module \(m.name) has no diffusers name: give --base, the base model it was trained for")
            }
            guard case .lowRank(let a, let b) = m.update else {
                throw InteropError(.unsupported, path, "module \(m.name) is a \(m.update.kind.rawValue) update; the diffusers layout holds only LoRA")
            }
            let key = name.role + "." + module
            guard seen.insert(key).inserted else { throw InteropError(.unmatchedNames, path, "two modules would both be written as \(key)") }
            let pointwise = [Int](repeating: 1, count: m.kernel.count)
            tensors.append((key + ".lora_A.weight", a.reshaped([a.shape[0], m.inChannels] + m.kernel)))
            tensors.append((key + ".lora_B.weight", b.reshaped(b.shape + pointwise)))
            if let mag = m.doraMagnitude {
                guard m.doraAxis == .out else { throw InteropError(.unsupported, path, "module \(m.name): PEFT's DoRA has no magnitude over input channels") }
                // PEFT keeps a conv layer's magnitude as [1, out, 1, 1]; diffusers loads a text encoder's
                // under `.weight` (as its kohya conversion writes it), a UNet's without.
                let suffix = name.role.hasPrefix("text_encoder") ? ".lora_magnitude_vector.weight" : ".lora_magnitude_vector"
                tensors.append((key + suffix, m.kernel.isEmpty ? mag : mag.reshaped([1, m.outFeatures] + pointwise)))
            }
            guard m.biasDelta == nil else {
                throw InteropError(.unsupported, path, "module \(m.name) changes its layer's bias, which the diffusers layout cannot hold (--format kohya keeps it)")
            }
            if perRole[name.role] == nil { roles.append(name.role) }
            perRole[name.role, default: []].append((module, a.shape[0], m.scale, m.doraMagnitude != nil))
        }
        var config = JSONObject()
        for role in roles {
            // Safe: every role in `roles` has entries.
            let modules = perRole[role]!
            for (k, v) in try loraConfig(modules, path: path).pairs { config[role + "." + k] = v }
        }
        let metadata = [("format", "pt"), ("lora_adapter_metadata", JSONWriter.string(.object(config), indent: 2)), (SafetensorsWriter.markerKey, "export diffusers")]
        if path.hasSuffix(".safetensors") {
            let out = try AtomicFileWriter(destination: path, overwrite: overwrite, kind: SafetensorsWriter.outputKind)
            try SafetensorsWriter.write(tensors, metadata: metadata, into: out)
            try out.commit()
        } else {
            let directory = try AtomicDirectoryWriter(destination: path, overwrite: overwrite)
            try SafetensorsWriter.write(tensors, metadata: metadata, to: directory.path(for: DiffusionAdapter.diffusersFileName), overwrite: false)
            try directory.commit()
        }
    }

    /// One component's `LoraConfig` fields: the most common rank and scale as `r` and `lora_alpha`,
    /// `rank_pattern`/`alpha_pattern` by full module path for the rest, so every module's `alpha / r`
    /// is its scale exactly.
    static func loraConfig(_ modules: [(path: String, rank: Int, scale: Double, dora: Bool)], path: String) throws -> JSONObject {
        var counts: [String: (rank: Int, scale: Double, count: Int)] = [:]
        for m in modules { counts["\(m.rank)/\(m.scale)", default: (m.rank, m.scale, 0)].count += 1 }
        // Safe: a role has at least one module.
        let common = counts.values.max { ($0.count, -$0.rank) < ($1.count, -$1.rank) }!
        let alpha = PEFTWriter.exactAlpha(rank: common.rank, scale: common.scale)
        var rankPattern = JSONObject(), alphaPattern = JSONObject()
        for m in modules {
            let a = PEFTWriter.exactAlpha(rank: m.rank, scale: m.scale)
            guard a / Double(m.rank) == m.scale else { throw InteropError(.unsupported, path, "module \(m.path): no lora_alpha gives scale \(m.scale) at rank \(m.rank) exactly") }
            if m.rank != common.rank { rankPattern[m.path] = JSONValue(m.rank) }
            if m.rank != common.rank || m.scale != common.scale { alphaPattern[m.path] = JSONValue(a) }
        }
        return JSONObject([
            ("r", JSONValue(common.rank)), ("lora_alpha", JSONValue(alpha)), ("target_modules", JSONValue(modules.map(\.path))),
            ("rank_pattern", .object(rankPattern)), ("alpha_pattern", .object(alphaPattern)), ("use_dora", JSONValue(modules.contains { $0.dora })),
            ("lora_dropout", JSONValue(0)), ("init_lora_weights", JSONValue(true)), ("bias", JSONValue("none")),
        ])
    }
}
