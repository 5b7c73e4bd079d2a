import TLoRAModel

extension UpdateShape {
    /// The ranks and a short description `tlora inspect` shows for the structured forms (nil for the
    /// forms the report describes itself): `8x8 ⊗ 16x16 r4` for a Kronecker product with a rank-4
    /// W2, `r4 ⊙ r4` for a Hadamard product, `r4x4 tucker 3x3` for a Tucker-2 conv kernel.
    var structuredSummary: (ranks: [Int], detail: String)? {
        switch self {
        case .lowRank, .tensorTrain, .tuckerSlice, .dense, .jointTrain: return nil
        case .convTucker(let core, _, _):
            return (Array(core.prefix(2)), "r\(core.prefix(2).map(String.init).joined(separator: "x")) tucker \(Self.text(Array(core.dropFirst(2))))")
        case .kronecker(let w1, let w2):
            return ([], Self.text(w1) + " ⊗ " + Self.text(w2))
        case .hadamard(let p1, let p2):
            return ([], Self.text(p1) + " ⊙ " + Self.text(p2))
        case .diagonalLowRank(let a, _, _):
            return ([a.first ?? 0], "B·diag(E)·A")
        case .vera(let name, _, let lambdaD):
            return ([lambdaD.first ?? 0], "shared \(name)")
        case .featureScale(_, let axis):
            return ([], "scales \(axis.rawValue)")
        }
    }

    static func text(_ dims: [Int]) -> String { dims.map(String.init).joined(separator: "x") }

    /// `8x8` (full), `16x16 r4` (low-rank), `16x16x3x3 tucker r4` (Tucker-2).
    static func text(_ f: FactorShape) -> String {
        switch f {
        case .full(let m): return text(m)
        case .lowRank(let a, let b): return "\(b.first ?? 0)x\(a.last ?? 0) r\(a.first ?? 0)"
        case .tucker(let core, let a, let b):
            return "\(b.first ?? 0)x\(a.last ?? 0)x\(text(Array(core.dropFirst(2)))) tucker r\(core.first ?? 0)"
        }
    }
}

extension InspectReport.Module {
    /// Marks what the update column cannot say: DoRA's axis, a bias change, a convolution's weight shape.
    mutating func describeExtras(kernel: [Int], doraAxis: FeatureAxis, bias: Bool) {
        if !kernel.isEmpty { shape = [shape[0], shape[1] / max(kernel.reduce(1, *), 1)] + kernel }
        if dora, doraAxis == .in { update += "+dora(in)"; dora = false }
        if bias { update += "+bias" }
    }
}
