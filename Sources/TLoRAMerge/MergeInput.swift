import TLoRAModel

/// One adapter of a merge of several (`Merger.merge(_:base:output:options:)`, `tlora merge A B …`).
public struct MergeInput: Sendable {
    public var adapter: Adapter
    /// Where it came from: named in messages, and never a valid output.
    public var path: String
    /// Multiplies this adapter's updates (on top of `MergeOptions.scale`).
    public var weight: Double
    /// Modules that update rows of a fused weight (`DiffusionBinding`), by name.
    public var rows: [String: Range<Int>]

    public init(adapter: Adapter, path: String, weight: Double = 1, rows: [String: Range<Int>] = [:]) {
        self.adapter = adapter
        self.path = path
        self.weight = weight
        self.rows = rows
    }
}
