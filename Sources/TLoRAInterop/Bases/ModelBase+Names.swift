/// The prefixes of a single-file diffusion checkpoint (the original Stable Diffusion / SGM layout,
/// and ComfyUI's `text_encoders.*` for SD3/Flux files) and what each holds.
public enum SingleFileNames {
    public enum Scheme: Sendable {
        /// The SGM UNet (`input_blocks.4.1…`); diffusers names are aliases.
        case sgmUNet
        /// A Hugging Face CLIP text model, with or without `text_model.`.
        case hfCLIP
        /// An OpenCLIP text tower; Hugging Face CLIP names are aliases (q/k/v as row ranges).
        case openCLIP
        /// Names used as they are.
        case native
    }

    static let prefixes: [(prefix: String, role: String, scheme: Scheme)] = [
        ("model.diffusion_model.", "unet", .sgmUNet),
        ("cond_stage_model.transformer.", "text_encoder", .hfCLIP),
        ("cond_stage_model.model.", "text_encoder", .openCLIP),
        ("conditioner.embedders.0.transformer.", "text_encoder", .hfCLIP),
        ("conditioner.embedders.0.model.", "text_encoder", .openCLIP),
        ("conditioner.embedders.1.transformer.", "text_encoder_2", .hfCLIP),
        ("conditioner.embedders.1.model.", "text_encoder_2", .openCLIP),
        ("text_encoders.clip_l.transformer.", "text_encoder", .hfCLIP),
        ("text_encoders.clip_g.transformer.", "text_encoder_2", .hfCLIP),
        ("text_encoders.t5xxl.transformer.", "text_encoder_3", .native),
        ("first_stage_model.", "vae", .native),
    ]

    /// True when the names are those of a single-file diffusion checkpoint.
    public static func isSingleFile(_ names: [String]) -> Bool {
        names.contains { n in n.hasPrefix("model.diffusion_model.") || n.hasPrefix("conditioner.embedders.") || n.hasPrefix("cond_stage_model.") }
    }

    /// The prefix, role and scheme of a single-file tensor name.
    public static func split(_ name: String) -> (prefix: String, role: String, scheme: Scheme)? {
        prefixes.first { name.hasPrefix($0.prefix) }
    }
}

extension ModelBase {
    /// Every name an adapter may use for each of this base's modules (`ModuleNameIndex`).
    ///
    /// - A checkpoint: role `""`, each `<path>.weight` as `<path>`.
    /// - A pipeline: role = component (`unet`, `text_encoder`, …; a `transformer` also answers as
    ///   `unet`, which kohya's trainers write for every denoiser), each weight under its own path;
    ///   a UNet's weights also under their SGM names, a CLIP text model's with and without `text_model.`.
    /// - A single file: the same roles from the prefixes (`SingleFileNames`); SGM UNet weights also
    ///   under their diffusers names, OpenCLIP weights under the Hugging Face names (q/k/v as rows of
    ///   `in_proj_weight`).
    public func nameIndex() -> ModuleNameIndex {
        var index = ModuleNameIndex()
        switch layout {
        case .checkpoint:
            index = ModuleNameIndex(tensorNames: components[0].checkpoint.tensorNames)
        case .pipeline:
            for c in components {
                let names = c.checkpoint.tensorNames
                let roles = c.name == "transformer" ? ["transformer", "unet"] : [c.name]
                let unet = (c.className ?? "").hasPrefix("UNet2D") ? UNetNames(diffusersNames: names) : nil
                let clip = c.library == "transformers" && (c.className ?? "").hasPrefix("CLIP")
                for name in names where name.hasSuffix(".weight") {
                    let path = String(name.dropLast(".weight".count))
                    let target = BaseTarget(tensor: Self.qualified(component: c.name, tensor: name))
                    var paths = [path]
                    if let sgm = unet?.sgm(fromDiffusers: path) { paths.append(sgm) }
                    if clip { paths.append(Self.textModelAlias(path)) }
                    for role in roles { for p in paths { index.add(role: role, path: p, target: target) } }
                }
            }
        case .singleFile:
            let names = components[0].checkpoint.tensorNames
            let unetNames = names.compactMap { $0.hasPrefix("model.diffusion_model.") ? String($0.dropFirst("model.diffusion_model.".count)) : nil }
            let unet = UNetNames(sgmNames: unetNames)
            for name in names {
                guard let (prefix, role, scheme) = SingleFileNames.split(name) else { continue }
                let inner = String(name.dropFirst(prefix.count))
                let roles = role == "unet" ? ["unet", "transformer"] : [role]
                var aliases: [(path: String, rows: Range<Int>?)] = []
                if inner.hasSuffix(".weight") { aliases.append((String(inner.dropLast(".weight".count)), nil)) }
                switch scheme {
                case .sgmUNet:
                    if let own = aliases.first?.path, let d = unet?.diffusers(fromSGM: own) { aliases.append((d, nil)) }
                case .hfCLIP:
                    if let own = aliases.first?.path { aliases.append((Self.textModelAlias(own), nil)) }
                case .openCLIP:
                    let shape = components[0].checkpoint.entry(name)?.entry.shape ?? []
                    for a in CLIPNames.hfAliases(ofOpenCLIP: inner, shape: shape) {
                        aliases.append(a)
                        aliases.append((Self.textModelAlias(a.path), a.rows))
                    }
                case .native: break
                }
                for role in roles {
                    for a in aliases { index.add(role: role, path: a.path, target: BaseTarget(tensor: name, rows: a.rows)) }
                }
            }
        }
        return index
    }

    /// transformers 5 saves `CLIPTextModel` without the `text_model.` level that version 4 (and every
    /// kohya LoRA trained with it) has: the other spelling of a CLIP path.
    static func textModelAlias(_ path: String) -> String {
        path.hasPrefix("text_model.") ? String(path.dropFirst("text_model.".count)) : "text_model." + path
    }
}
