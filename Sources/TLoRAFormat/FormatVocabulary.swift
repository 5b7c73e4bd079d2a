import TLoRAModel
import TLoRANumerics

/// The words a `.tlora` header uses for element types and update forms (docs/FORMAT.md §2.2, §2.3).
///
/// The file's vocabulary is fixed by the format, not by Swift case names: renaming `DType.bf16` must
/// not change what a file says. Every reader and writer of the header goes through these two maps.
public enum FormatVocabulary {
    /// The `dtype` string of a tensor entry.
    public static func name(of dtype: DType) -> String {
        switch dtype {
        case .f32: return "f32"
        case .f64: return "f64"
        case .f16: return "f16"
        case .bf16: return "bf16"
        }
    }

    /// The element type a `dtype` string names, or nil for a word the format does not define.
    public static func dtype(named name: String) -> DType? {
        DType.allCases.first { self.name(of: $0) == name }
    }

    /// Every `dtype` string, for messages.
    public static var dtypeNames: [String] { DType.allCases.map(name(of:)) }

    /// The `update.type` string of an update form (`UpdateKind`'s raw values are the format's words).
    public static func name(of kind: UpdateKind) -> String { kind.rawValue }

    /// The update form an `update.type` string names, or nil.
    public static func updateKind(named name: String) -> UpdateKind? { UpdateKind(rawValue: name) }
}
