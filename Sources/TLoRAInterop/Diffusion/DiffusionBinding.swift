import TLoRAIO
import TLoRAModel

/// Binds the modules of a kohya, LyCORIS or diffusers-layout adapter (`DiffusionAdapter`) to the
/// tensors of a base (`ModelBase`), the way ComfyUI does: each module's key is looked up among every
/// name the base's own modules answer to (`ModuleNameIndex`), never rewritten by guessing where
/// underscores were dots. A key that matches nothing, or more than one tensor, is an error naming the
/// keys, unless the caller asks to skip such modules (and then reports them).
///
/// Modules without a diffusion role (from PEFT, GGUF, … or already bound) are left as they are.
public struct DiffusionBinding: Sendable {
    /// Module name → the base tensor (and rows of it) the module updates.
    public var targets: [String: BaseTarget] = [:]
    /// Modules dropped because their key matched nothing or was ambiguous (only when skipping).
    public var skipped: [String] = []

    /// How many keys an error line names before it says how many more there are.
    static let namesInMessage = 50

    /// Binds `adapter`'s modules to `base`: each bound module's `target` becomes the base tensor's
    /// qualified name and, when the base weight is a convolution the file's shapes did not show (LoHa or
    /// LoKr factors keep a conv's kernel folded into their columns), its `kernel` the base's.
    ///
    /// `index` is `base.nameIndex()`, built here unless the caller binds many adapters to one base.
    ///
    /// - Throws: `InteropError` naming `adapterPath` and the unmatched or ambiguous keys.
    public static func bind(_ adapter: inout Adapter, to base: ModelBase, index: ModuleNameIndex? = nil, adapterPath: String,
                            skipUnmatched: Bool = false) throws -> DiffusionBinding {
        guard adapter.modules.contains(where: { $0.attributes["diffusion.role"] != nil }) else { return DiffusionBinding() }
        let index = index ?? base.nameIndex()
        var binding = DiffusionBinding()
        var unmatched: [String] = [], ambiguous: [String] = []
        var kept: [AdapterModule] = []
        for var m in adapter.modules {
            guard let role = m.attributes["diffusion.role"] else {
                kept.append(m)
                continue
            }
            let lookup: ModuleNameIndex.Lookup
            if let flat = m.attributes["diffusion.flat"] {
                lookup = index.lookup(role: base.layout == .checkpoint ? "" : role, flattened: flat)
            } else {
                lookup = index.lookup(role: base.layout == .checkpoint ? "" : role, path: m.attributes["diffusion.path"] ?? m.name)
            }
            switch lookup {
            case .missing:
                unmatched.append(m.name)
            case .ambiguous(let targets):
                ambiguous.append("\(m.name) (\(targets.map(\.description).joined(separator: " or ")))")
            case .found(let target):
                m.target = target.tensor
                if m.kernel.isEmpty, let shape = base.entry(target.tensor)?.shape, shape.count >= 3, shape[0] == m.outFeatures || target.rows != nil {
                    let kernel = Array(shape.dropFirst(2))
                    if let k = CheckedSize.product(kernel), k > 0, m.inFeatures % k == 0, m.inFeatures / k == shape[1] { m.kernel = kernel }
                }
                binding.targets[m.name] = target
                kept.append(m)
            }
        }
        if !ambiguous.isEmpty && !skipUnmatched {
            throw InteropError(.unmatchedNames, adapterPath, "\(ambiguous.count) module\(ambiguous.count == 1 ? "" : "s") match more than one tensor of \(base.path): \(list(ambiguous))")
        }
        if !unmatched.isEmpty && !skipUnmatched {
            let kept = adapter.modules.count - unmatched.count - ambiguous.count
            throw InteropError(.unmatchedNames, adapterPath, "\(unmatched.count) of \(adapter.modules.count) modules match no tensor of \(base.path) (an adapter for another base model?"
                + "\(kept > 0 ? " --skip-unmatched merges the other \(kept)" : "")): \(list(unmatched))")
        }
        binding.skipped = unmatched + ambiguous
        adapter.modules = kept
        return binding
    }

    static func list(_ names: [String]) -> String {
        let shown = names.prefix(namesInMessage).joined(separator: ", ")
        return names.count > namesInMessage ? shown + " … and \(names.count - namesInMessage) more" : shown
    }
}
