import TLoRAModel

/// Which modules are stacked into one tensor, following TensLoRA's constructions (ax-le/TensLoRA):
/// `att` (in, out/H, H), `qkv` (in, out, 3), `depth` (in, out, L), `att-qkv` (in, out/H, H, 3),
/// `att-depth` (in, out/H, H, L), `qkv-depth` (in, out, 3, L), `att-qkv-depth` (in, out/H, H, 3, L),
/// plus `module` (each module alone, in × out). "qkv" means any projection family given with
/// `projections` (default: the attention q/k/v of the architecture), so MLP projections stack the
/// same way. Modules of unequal shape are never stacked together.
public enum GroupKind: String, Sendable, CaseIterable {
    case module, att, qkv, depth
    case attQKV = "att-qkv", attDepth = "att-depth", qkvDepth = "qkv-depth", attQKVDepth = "att-qkv-depth"

    var splitsHeads: Bool { [.att, .attQKV, .attDepth, .attQKVDepth].contains(self) }
    var stacksProjections: Bool { [.qkv, .attQKV, .qkvDepth, .attQKVDepth].contains(self) }
    var stacksLayers: Bool { [.depth, .attDepth, .qkvDepth, .attQKVDepth].contains(self) }
}

/// One planned group: its members (in stacking order) and their coordinates along the member modes.
struct GroupPlan {
    var name: String
    var kind: GroupKind
    /// Member module names with coordinates (projection index and/or layer index, in mode order).
    var members: [(name: String, index: [Int])]
    /// Labels of the member modes, in order: projections, then layers.
    var memberModes: [(name: String, labels: [String])]
    var out: Int
    var inFeatures: Int
    /// Heads, when the output is split (att constructions).
    var heads: Int?
}

enum Grouping {
    /// Attention q/k/v names of the common architectures, in stacking order.
    static let knownFamilies: [[String]] = [
        ["q_proj", "k_proj", "v_proj"], ["query", "key", "value"], ["q", "k", "v"], ["q_lin", "k_lin", "v_lin"], ["wq", "wk", "wv"],
    ]

    /// Plans the groups. Returns the plans and, for every module left alone or split off, why.
    static func plan(_ adapter: Adapter, kind: GroupKind, projections: [String]?, heads: Int?) throws -> ([GroupPlan], [(String, String)]) {
        let modules = adapter.modules.filter { if case .tuckerSlice = $0.update { return false }; return true }
        var notes: [(String, String)] = []
        if kind.splitsHeads, heads == nil {
            throw ConvertError("--group \(kind.rawValue) splits outputs into attention heads: give --heads H")
        }
        if kind == .module {
            return (modules.map { single($0) }, [])
        }
        let paths = Dictionary(uniqueKeysWithValues: modules.map { ($0.name, ModulePath($0.name)) })
        // The projection family: given, or the first known family present.
        let family: [String] = projections ?? knownFamilies.first { f in modules.contains { f.contains(paths[$0.name]!.projection) } } ?? []  // safe: every module has a path
        if kind.stacksProjections, family.isEmpty {
            throw ConvertError("no q/k/v projections found to stack; name them with --projections a,b,c")
        }
        // Bucket modules by what stays fixed within a group.
        var buckets: [String: [AdapterModule]] = [:]
        var order: [String] = []
        for m in modules {
            let p = paths[m.name]!  // safe: built from the same list
            let inFamily = family.contains(p.projection)
            if kind.stacksProjections && !inFamily {
                notes.append((m.name, "not one of the stacked projections \(family.joined(separator: ","))"))
                continue
            }
            if kind.stacksLayers && p.layer == nil {
                notes.append((m.name, "has no layer number to stack along"))
                continue
            }
            var key = p.prefix + "|" + p.block
            if !kind.stacksProjections { key += "|" + p.projection }
            if !kind.stacksLayers { key += "|" + String(p.layer ?? -1) }
            // Never stack unequal shapes: the shape is part of the bucket.
            key += "|\(m.outFeatures)x\(m.inFeatures)"
            if buckets[key] == nil { order.append(key) }
            buckets[key, default: []].append(m)
        }
        var plans: [GroupPlan] = []
        var stackedBy: [String: String] = [:]
        for key in order {
            let members = buckets[key]!  // safe: key came from the dictionary
            let projNames = kind.stacksProjections ? family.filter { f in members.contains { paths[$0.name]!.projection == f } } : []
            let layers = kind.stacksLayers ? Array(Set(members.compactMap { paths[$0.name]!.layer })).sorted() : []
            // Every (projection, layer) slot must be filled for a complete grid.
            if kind.stacksProjections && kind.stacksLayers && projNames.count * layers.count != members.count {
                for m in members { notes.append((m.name, "the projection × layer grid is incomplete; left unstacked")) }
                continue
            }
            if let h = heads, kind.splitsHeads, members[0].outFeatures % h != 0 {
                for m in members { notes.append((m.name, "\(m.outFeatures) outputs do not split into \(h) heads")) }
                continue
            }
            var coords: [(String, [Int])] = []
            for m in members {
                let p = paths[m.name]!  // safe: as above
                var index: [Int] = []
                if kind.stacksProjections { index.append(projNames.firstIndex(of: p.projection)!) }  // safe: filtered to the family
                if kind.stacksLayers { index.append(layers.firstIndex(of: p.layer!)!) }  // safe: stacksLayers excluded layer-less modules
                coords.append((m.name, index))
            }
            var memberModes: [(String, [String])] = []
            if kind.stacksProjections { memberModes.append(("projection", projNames)) }
            if kind.stacksLayers { memberModes.append(("layer", layers.map(String.init))) }
            let first = paths[members[0].name]!  // safe
            var name = first.prefix
            if !kind.stacksLayers, let l = first.layer { name += ".\(l)" }
            if !first.block.isEmpty { name += "." + first.block }
            name += "." + (kind.stacksProjections ? projNames.joined(separator: "+") : first.projection)
            name += "[\(kind.rawValue)]"
            plans.append(GroupPlan(name: name, kind: kind, members: coords, memberModes: memberModes,
                                   out: members[0].outFeatures, inFeatures: members[0].inFeatures, heads: kind.splitsHeads ? heads : nil))
            for m in members { stackedBy[m.name] = name }
        }
        // Explain projections of one family that landed in different groups (unequal shapes, GQA).
        if kind.stacksProjections {
            for plan in plans {
                let stacked = plan.memberModes.first?.labels ?? []
                let missing = family.filter { !stacked.contains($0) }
                if !missing.isEmpty {
                    notes.append((plan.name, "stacks \(stacked.joined(separator: ",")) only: \(missing.joined(separator: ",")) has another shape or is absent"))
                }
            }
        }
        // Modules excluded above stay as they are; modules alone in a bucket are still stacked (one member).
        return (plans, notes)
    }

    static func single(_ m: AdapterModule) -> GroupPlan {
        GroupPlan(name: m.name + "[module]", kind: .module, members: [(m.name, [])], memberModes: [], out: m.outFeatures, inFeatures: m.inFeatures, heads: nil)
    }
}
