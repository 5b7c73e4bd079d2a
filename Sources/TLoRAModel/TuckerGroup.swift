/// Several modules' updates stacked into one tensor held in Tucker form (TensLoRA).
///
/// The full tensor is `T = core ×_1 U_1 ×_2 U_2 ⋯ ×_N U_N` with factor `U_k` of shape `I_k × R_k` and
/// core of shape `[R_1, …, R_N]`. Each mode has a role: `column` modes make up the input index of
/// `ΔW`, `row` modes the output index, `member` modes select the module (projection, layer, …).
/// Within each role, indices combine mixed-radix in mode order with the LAST mode fastest; e.g.
/// TensLoRA's `att` tensor `(in, out/H, H)` has row modes `(out/H, H)`, so output row
/// `o = d · H + h` (head index fastest). A member module with `index = (p, l)` (one entry per member
/// mode) has `ΔW[o, i] = scale · T[…]` at those coordinates.
public struct TuckerGroup: Sendable, Equatable {
    public var name: String
    public var core: StoredTensor
    public var factors: [StoredTensor]
    public var modes: [TuckerMode]
    public var conversion: ConversionRecord?

    public init(name: String, core: StoredTensor, factors: [StoredTensor], modes: [TuckerMode], conversion: ConversionRecord? = nil) {
        self.name = name
        self.core = core
        self.factors = factors
        self.modes = modes
        self.conversion = conversion
    }

    /// `I_k` for each mode.
    public var dimensions: [Int] { factors.map { $0.shape[0] } }
    /// `R_k` for each mode.
    public var ranks: [Int] { core.shape }
    public var parameterCount: Int { core.elementCount + factors.reduce(0) { $0 + $1.elementCount } }
    /// Product of the row modes' dimensions (the `out` of each member's ΔW).
    public var outFeatures: Int { shape.outFeatures }
    /// Product of the column modes' dimensions (the `in` of each member's ΔW).
    public var inFeatures: Int { shape.inFeatures }
    /// Dimensions of the member modes, in order.
    public var memberDimensions: [Int] { shape.memberDimensions }
}

/// The meaning of one Tucker mode.
public struct TuckerMode: Sendable, Equatable {
    public enum Role: String, Sendable, Equatable, CaseIterable {
        case row, column, member
    }

    public var role: Role
    /// What the mode indexes: "in", "out", "head_dim", "head", "projection", "layer", …
    public var name: String
    /// For member modes: a label per index (e.g. `["q_proj", "k_proj", "v_proj"]` or layer numbers).
    public var labels: [String]

    public init(role: Role, name: String, labels: [String] = []) {
        self.role = role
        self.name = name
        self.labels = labels
    }
}
