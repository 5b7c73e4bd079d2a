import TLoRAModel

/// The module paths of a LyCORIS file of one model (`lycoris_` keys: LyCORIS's `LORA_PREFIX` over a
/// whole language model), found by looking each flattened key up among a base's tensor names
/// (`ModuleNameIndex`, as ComfyUI does) — never by turning underscores back into dots, which
/// `gate_proj` and `self_attn` make ambiguous.
public enum LyCORISNames {
    /// Renames every `lycoris_` module of `adapter` to the base module its key names (its `target`
    /// the base's weight); the key stays in the module's attributes, so an export writes it back.
    ///
    /// - Throws: `InteropError` naming `path` and the key no base tensor, or more than one, answers to.
    public static func resolve(_ adapter: inout Adapter, tensorNames: [String], path: String) throws {
        let index = ModuleNameIndex(tensorNames: tensorNames)
        for i in adapter.modules.indices {
            let m = adapter.modules[i]
            guard m.attributes["kohya.prefix"] == "lycoris_", let flat = m.attributes["diffusion.flat"] else { continue }
            switch index.lookup(role: "", flattened: flat) {
            case .found(let target):
                guard target.rows == nil, target.tensor.hasSuffix(".weight") else { fallthrough }
                adapter.modules[i].name = String(target.tensor.dropLast(".weight".count))
                adapter.modules[i].target = target.tensor
            case .missing:
                throw InteropError(.unmatchedNames, path, "no weight of the base answers to the LyCORIS key lycoris_\(flat) (a base of another model?)")
            case .ambiguous(let targets):
                throw InteropError(.unmatchedNames, path, "the LyCORIS key lycoris_\(flat) names \(targets.map(\.description).joined(separator: " and ")) alike")
            }
        }
        adapter.metadata["lycoris.names"] = nil
    }
}
