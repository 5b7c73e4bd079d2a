import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// `tlora verify CANDIDATE --against REFERENCE`: relative Frobenius error of every module's `ΔW`,
/// every Tucker group's stacked tensor and every replaced tensor, computed from factors.
public struct AdapterComparison: Sendable {
    public struct Entry: Sendable {
        public enum Kind: String, Sendable { case module, group, dora = "dora_magnitude", replaced }
        public var name: String
        public var kind: Kind
        /// ‖candidate − reference‖_F / ‖reference‖_F (the absolute difference when the reference is 0).
        public var relativeError: Double
        /// ‖reference‖_F.
        public var referenceNorm: Double
        /// How it was computed.
        public var note: String?
        /// False for a Tucker slice: the bound applies to its group's stacked tensor, not to the slice.
        public var boundApplies: Bool = true
    }

    public var entries: [Entry] = []
    /// Names present on one side only.
    public var onlyInCandidate: [String] = []
    public var onlyInReference: [String] = []

    public var worst: Double { entries.map(\.relativeError).max() ?? 0 }

    public static func compare(candidate: Adapter, reference: Adapter) throws -> AdapterComparison {
        var result = AdapterComparison()
        let refByName = Dictionary(uniqueKeysWithValues: reference.modules.map { ($0.name, $0) })
        let candByName = Dictionary(uniqueKeysWithValues: candidate.modules.map { ($0.name, $0) })
        result.onlyInCandidate = candidate.modules.map(\.name).filter { refByName[$0] == nil }
        result.onlyInReference = reference.modules.map(\.name).filter { candByName[$0] == nil }
        let common = reference.modules.filter { candByName[$0.name] != nil }
        // (difference², reference²) per module, for module entries and group totals.
        let measured = try Parallel.map(count: common.count) { i -> (Double, Double, Bool) in
            let r = common[i], c = candByName[r.name]!  // safe: filtered to common names
            guard (r.outFeatures, r.inFeatures) == (c.outFeatures, c.inFeatures) else {
                throw ConvertError(.shapeMismatch, "module \(r.name) is \(r.outFeatures)×\(r.inFeatures) in the reference but \(c.outFeatures)×\(c.inFeatures) in the candidate")
            }
            let x = try LowRankForm.orDense(r, in: reference), y = try LowRankForm.orDense(c, in: candidate)
            let dense = !LowRankForm.hasFactors(r) || !LowRankForm.hasFactors(c)
            let d = ErrorMeasure.differenceNorm(y, scale: c.scale, x, scale: r.scale)
            let n = ErrorMeasure.norm(x, scale: r.scale)
            return (d, n, dense)
        }
        for (r, (d, n, dense)) in zip(common, measured) {
            let c = candByName[r.name]!  // safe: common
            var entry = Entry(name: r.name, kind: .module, relativeError: n > 0 ? d / n : d, referenceNorm: n, note: dense ? "dense fallback" : nil)
            if case .tuckerSlice(let g, _) = c.update {
                entry.boundApplies = false
                entry.note = "slice of \(g): the bound applies to the group"
            }
            result.entries.append(entry)
            switch (c.doraMagnitude, r.doraMagnitude) {
            case (nil, nil): break
            case (let cm?, let rm?):
                let e = RelativeDifference.of(cm.doubles(), rm.doubles())
                result.entries.append(Entry(name: r.name, kind: .dora, relativeError: e, referenceNorm: ErrorMeasure.frobenius(rm.doubles())))
            default:
                result.entries.append(Entry(name: r.name, kind: .dora, relativeError: 1, referenceNorm: 0, note: "DoRA magnitude on one side only"))
            }
        }
        // Groups: the stacked tensor's error is the root of the members' summed squares.
        let index = Dictionary(uniqueKeysWithValues: zip(common.map(\.name), measured))
        for adapter in [candidate, reference] {
            for g in adapter.tuckerGroups where !result.entries.contains(where: { $0.kind == .group && $0.name == g.name }) {
                let members = adapter.modules.filter { if case .tuckerSlice(let n, _) = $0.update { return n == g.name }; return false }
                let pairs = members.compactMap { index[$0.name] }
                guard !pairs.isEmpty else { continue }
                let d = pairs.reduce(0) { $0 + $1.0 * $1.0 }.squareRoot(), n = pairs.reduce(0) { $0 + $1.1 * $1.1 }.squareRoot()
                result.entries.append(Entry(name: g.name, kind: .group, relativeError: n > 0 ? d / n : d, referenceNorm: n,
                                            note: "\(pairs.count) members"))
            }
        }
        let refReplaced = Dictionary(uniqueKeysWithValues: reference.replacedTensors.map { ($0.target, $0.value) })
        for r in candidate.replacedTensors {
            guard let ref = refReplaced[r.target] else { result.onlyInCandidate.append(r.target); continue }
            guard ref.shape == r.value.shape else { throw ConvertError(.shapeMismatch, "replaced tensor \(r.target) has shape \(r.value.shape) vs \(ref.shape)") }
            result.entries.append(Entry(name: r.target, kind: .replaced, relativeError: RelativeDifference.of(r.value.doubles(), ref.doubles()),
                                        referenceNorm: ErrorMeasure.frobenius(ref.doubles())))
        }
        result.onlyInReference += reference.replacedTensors.map(\.target).filter { t in !candidate.replacedTensors.contains { $0.target == t } }
        return result
    }
}

/// Relative errors of flat arrays (‖a − b‖ / ‖b‖, or ‖a − b‖ when b = 0).
enum RelativeDifference {
    static func of(_ a: [Double], _ b: [Double]) -> Double {
        var diff = a
        for i in diff.indices { diff[i] -= b[i] }
        let d = ErrorMeasure.frobenius(diff), n = ErrorMeasure.frobenius(b)
        return n > 0 ? d / n : d
    }
}
