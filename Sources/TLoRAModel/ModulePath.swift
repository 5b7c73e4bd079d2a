/// A module path split at its layer number: `model.layers.3.self_attn.q_proj` →
/// (`model.layers`, 3, `self_attn`, `q_proj`).
public struct ModulePath: Sendable, Equatable {
    public var prefix: String
    public var layer: Int?
    /// Path between the layer number and the projection name.
    public var block: String
    public var projection: String

    public init(_ name: String) {
        let parts = name.split(separator: ".").map(String.init)
        projection = parts.last ?? name
        if let i = parts.lastIndex(where: { Int($0) != nil }), i < parts.count - 1 {
            prefix = parts[..<i].joined(separator: ".")
            layer = Int(parts[i])
            block = parts[(i + 1)..<(parts.count - 1)].joined(separator: ".")
        } else {
            prefix = parts.dropLast().joined(separator: ".")
            layer = nil
            block = ""
        }
    }
}
