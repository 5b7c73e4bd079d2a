import TLoRAConvert
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// Everything a merge will do, checked before a byte is written: each module and replaced tensor
/// bound to a base tensor of the right shape and a floating dtype, no NaN or infinity in the adapter.
struct MergePlan: Sendable {
    enum Action: Sendable {
        /// Add the module's update, to the replacement when there is one, else to the base tensor.
        case update(AdapterModule, replacement: StoredTensor?)
        /// Modules that each update their own rows of a fused weight (`[R, C]`).
        case updateRows([(module: AdapterModule, rows: Range<Int>)])
        case replace(StoredTensor)
        /// The module's bias: `β + scale · Δβ`, or `β ⊙ v` for IA³ on the output axis.
        case bias(AdapterModule)
    }

    /// Base tensor (qualified) name → what happens to it (tensors not listed are copied).
    var actions: [String: Action] = [:]
    /// The pipeline components some action changes (`""` for a checkpoint or a single file).
    var touchedComponents: Set<String> = []

    /// Checkpoint prefixes that PEFT module paths and checkpoint names differ by (a task head's
    /// `bert.`, a causal LM's `model.`, GPT-2's `transformer.`).
    static let knownPrefixes = ["model.", "bert.", "transformer.", "roberta.", "base_model.", "encoder.", "gpt_neox.", "language_model."]

    /// - Parameter rows: modules that update only some rows of their target (a fused projection).
    init(adapter: Adapter, base: ModelBase, adapterPath: String, rows: [String: Range<Int>] = [:]) throws {
        func resolve(_ target: String) -> String? {
            if base.locate(target) != nil { return target }
            var candidates: [String] = []
            for p in Self.knownPrefixes {
                if target.hasPrefix(p), base.locate(String(target.dropFirst(p.count))) != nil { candidates.append(String(target.dropFirst(p.count))) }
                if base.locate(p + target) != nil { candidates.append(p + target) }
            }
            return Set(candidates).count == 1 ? candidates[0] : nil
        }
        func entry(_ name: String) -> SafetensorsEntry {
            // Safe: `resolve` only returns names the base holds.
            base.entry(name)!
        }
        for var m in adapter.modules {
            if let r = rows[m.name] {
                try planRows(m, rows: r, base: base, adapter: adapter, adapterPath: adapterPath)
                continue
            }
            guard let name = resolve(m.target) else {
                throw ConvertError(.missingBaseTensor, "\(base.path): the base has no tensor \(m.target) for adapter module \(m.name) (wrong base model?)")
            }
            let e = entry(name)
            guard e.dtype.floatType != nil else { throw ConvertError(.notSupported, "\(base.path): tensor \(name) is \(e.dtype.rawValue), not a floating weight") }
            // A conv update read without its kernel (a LoKr or LoHa flattened over in · kernel, a
            // .tlora of one) is the same flattened matrix: the base's weight says the kernel.
            // (Per-input-channel parts — DoRA on the input axis, IA³ on the inputs — were read one
            // per column, which is one per channel only for a 1×1 kernel.)
            if m.kernel.isEmpty, m.layout == .outIn, e.shape.count > 2, e.shape[0] == m.outFeatures,
               CheckedSize.product(Array(e.shape.dropFirst())) == m.inFeatures {
                let pointwise = e.shape.dropFirst(2).allSatisfy { $0 == 1 }
                var perChannel = m.doraMagnitude != nil && m.doraAxis == .in
                if case .featureScale(let f) = m.update, f.axis == .in { perChannel = true }
                if pointwise || !perChannel { m.kernel = Array(e.shape.dropFirst(2)) }
            }
            guard e.shape == m.targetShape else {
                let hint = e.shape == m.targetShape.reversed() ? " (the transpose: is fan_in_fan_out set right?)" : ""
                throw ConvertError(.shapeMismatch, "\(adapterPath): module \(m.name) updates a \(Formatting.shape(m.targetShape)) weight but the base's \(name) is \(Formatting.shape(e.shape))\(hint)")
            }
            guard actions[name] == nil else { throw ConvertError(.conflictingUpdates, "\(adapterPath): two adapter entries update \(name)") }
            try Self.checkFinite(m, adapter: adapter, path: adapterPath)
            actions[name] = .update(m, replacement: nil)
            // A bias change needs the bias; IA³ on the outputs rescales one if the layer has it.
            var scalesBias = false
            if case .featureScale(let f) = m.update, f.axis == .out { scalesBias = true }
            if m.biasDelta != nil || scalesBias {
                if let biasName = resolve(m.biasTarget) {
                    let b = entry(biasName)
                    guard b.shape == [m.outFeatures], b.dtype.floatType != nil else {
                        throw ConvertError(.shapeMismatch, "\(base.path): \(biasName) is \(Formatting.shape(b.shape)) \(b.dtype.rawValue), not the [\(m.outFeatures)] bias of module \(m.name)")
                    }
                    guard actions[biasName] == nil else { throw ConvertError(.conflictingUpdates, "\(adapterPath): two adapter entries update \(biasName)") }
                    actions[biasName] = .bias(m)
                } else if m.biasDelta != nil {
                    throw ConvertError(.missingBaseTensor, "\(base.path): the base has no tensor \(m.biasTarget) for the bias change of module \(m.name)")
                }
            }
        }
        for p in adapter.projections where !(p.a.allFinite && p.b.allFinite) {
            throw ConvertError(.nonFiniteValues, "\(adapterPath): projections \(p.name) hold NaN or infinite values")
        }
        for r in adapter.replacedTensors {
            guard let name = resolve(r.target) else {
                throw ConvertError(.missingBaseTensor, "\(base.path): the base has no tensor \(r.target), which the adapter replaces")
            }
            let e = entry(name)
            guard e.shape == r.value.shape else {
                throw ConvertError(.shapeMismatch, "\(adapterPath): replacement for \(name) is \(Formatting.shape(r.value.shape)) but the base's is \(Formatting.shape(e.shape))")
            }
            guard r.value.allFinite else { throw ConvertError(.nonFiniteValues, "\(adapterPath): replacement for \(r.target) holds NaN or infinite values") }
            switch actions[name] {
            case .update(let m, nil): actions[name] = .update(m, replacement: r.value)
            case nil: actions[name] = .replace(r.value)
            case .updateRows: throw ConvertError(.conflictingUpdates, "\(adapterPath): \(name) is both replaced and updated by fused-projection modules")
            case .bias(let m): throw ConvertError(.conflictingUpdates, "\(adapterPath): \(name) is both replaced and changed by module \(m.name)")
            default: throw ConvertError(.conflictingUpdates, "\(adapterPath): \(name) is replaced twice")
            }
        }
        for g in adapter.tuckerGroups where !([g.core] + g.factors).allSatisfy(\.allFinite) {
            throw ConvertError(.nonFiniteValues, "\(adapterPath): Tucker group \(g.name) holds NaN or infinite values")
        }
        touchedComponents = Set(actions.keys.compactMap { base.locate($0).map { base.components[$0.component].name } })
    }

    /// A module that updates rows `rows` of a fused `[R, C]` weight (its `targetShape` must be
    /// `[rows.count, C]`); modules on one weight may not overlap.
    private mutating func planRows(_ m: AdapterModule, rows: Range<Int>, base: ModelBase, adapter: Adapter, adapterPath: String) throws {
        guard let e = base.entry(m.target) else {
            throw ConvertError(.missingBaseTensor, "\(base.path): the base has no tensor \(m.target) for adapter module \(m.name)")
        }
        guard e.dtype.floatType != nil, e.shape.count == 2, rows.lowerBound >= 0, rows.upperBound <= e.shape[0], m.layout == .outIn,
              m.biasDelta == nil, m.targetShape == [rows.count, e.shape[1]] else {
            throw ConvertError(.shapeMismatch, "\(adapterPath): module \(m.name) updates a \(Formatting.shape(m.targetShape)) weight but rows \(rows.lowerBound)..<\(rows.upperBound) of the base's \(m.target) are \(Formatting.shape([rows.count] + e.shape.dropFirst()))")
        }
        guard m.update.isAdditive else { throw ConvertError(.notSupported, "\(adapterPath): module \(m.name) rescales rows of the fused \(m.target), which tlora does not merge") }
        try Self.checkFinite(m, adapter: adapter, path: adapterPath)
        var list: [(module: AdapterModule, rows: Range<Int>)] = []
        switch actions[m.target] {
        case nil: break
        case .updateRows(let existing): list = existing
        default: throw ConvertError(.conflictingUpdates, "\(adapterPath): two adapter entries update \(m.target)")
        }
        if let other = list.first(where: { $0.rows.overlaps(rows) }) {
            throw ConvertError(.conflictingUpdates, "\(adapterPath): modules \(other.module.name) and \(m.name) both update rows of \(m.target)")
        }
        actions[m.target] = .updateRows(list + [(m, rows)])
    }

    private static func checkFinite(_ m: AdapterModule, adapter: Adapter, path: String) throws {
        let tensors = m.update.tensors + [m.doraMagnitude, m.biasDelta].compactMap { $0 }
        if !tensors.allSatisfy(\.allFinite) { throw ConvertError(.nonFiniteValues, "\(path): module \(m.name) holds NaN or infinite values; refusing to merge it") }
        if !m.scale.isFinite { throw ConvertError(.nonFiniteValues, "\(path): module \(m.name) has scale \(m.scale)") }
    }
}

/// Shapes as "a×b" in messages.
enum Formatting {
    static func shape(_ s: [Int]) -> String { s.map(String.init).joined(separator: "×") }
}
