/// The tensor of a base model an adapter's module updates: a weight, or a row range of a fused weight
/// (OpenCLIP's `in_proj_weight` holds q, k and v one above the other).
public struct BaseTarget: Hashable, Sendable, CustomStringConvertible {
    /// The tensor's qualified name in the base (`ModelBase`).
    public var tensor: String
    /// The module's rows of the tensor, when the tensor is a fused projection.
    public var rows: Range<Int>?

    public init(tensor: String, rows: Range<Int>? = nil) {
        self.tensor = tensor
        self.rows = rows
    }

    public var description: String { rows.map { "\(tensor)[\($0.lowerBound)..<\($0.upperBound)]" } ?? tensor }
}

/// Resolves the module names adapters use against a base's own tensor names, the way ComfyUI does it:
/// every base module is registered under each name it can be called (its path, and aliases a naming
/// scheme gives it: the diffusers and original-SGM names of a UNet layer, the Hugging Face names of an
/// OpenCLIP projection) and under the flattened form of each (`.` → `_`, kohya's and LyCORIS's
/// keys). A key is looked up, never un-flattened: underscores inside names (`to_q`, `proj_in`,
/// `time_emb_proj`) are never guessed at.
///
/// Names live in *roles*: a diffusion base's `unet`, `text_encoder`, `text_encoder_2`, …, and `""`
/// for a plain checkpoint. A key that two different targets answer to is ambiguous, not resolved.
public struct ModuleNameIndex: Sendable {
    public enum Lookup: Equatable, Sendable {
        case found(BaseTarget)
        case missing
        case ambiguous([BaseTarget])
    }

    private var dotted: [String: [String: Set<BaseTarget>]] = [:]
    private var flat: [String: [String: Set<BaseTarget>]] = [:]

    public init() {}

    /// A plain checkpoint's index: each `<path>.weight` under role `""` as `<path>`.
    public init(tensorNames: [String]) {
        for name in tensorNames where name.hasSuffix(".weight") {
            add(role: "", path: String(name.dropLast(".weight".count)), target: BaseTarget(tensor: name))
        }
    }

    /// Registers `path` (and its flattened form) as a name of `target` in `role`.
    public mutating func add(role: String, path: String, target: BaseTarget) {
        dotted[role, default: [:]][path, default: []].insert(target)
        flat[role, default: [:]][Self.flatten(path), default: []].insert(target)
    }

    /// The target a dotted module path names in `role`.
    public func lookup(role: String, path: String) -> Lookup { Self.result(dotted[role]?[path]) }

    /// The target a flattened key (`down_blocks_0_attentions_0_proj_in`) names in `role`.
    public func lookup(role: String, flattened key: String) -> Lookup { Self.result(flat[role]?[key]) }

    /// Roles that have any names.
    public var roles: [String] { Array(dotted.keys).sorted() }

    /// `a.b.c` → `a_b_c`: how kohya and LyCORIS write module paths in their keys.
    public static func flatten(_ path: String) -> String {
        String(path.map { $0 == "." ? "_" : $0 })
    }

    private static func result(_ targets: Set<BaseTarget>?) -> Lookup {
        guard let targets, !targets.isEmpty else { return .missing }
        if targets.count == 1, let t = targets.first { return .found(t) }
        return .ambiguous(targets.sorted { $0.description < $1.description })
    }
}
