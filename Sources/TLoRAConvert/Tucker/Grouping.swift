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
    ///
    /// The att constructions split the outputs of the attention q/k/v projections into heads:
    /// queries into `heads`, keys and values into `keyValueHeads` (grouped-query attention), or,
    /// when that is not given, into as many heads of the query's head size as their outputs hold.
    /// Other modules (o_proj, the MLP) have no heads in their outputs and are left as they are.
    static func plan(_ adapter: Adapter, kind: GroupKind, projections: [String]?, heads: Int?,
                     keyValueHeads: Int? = nil) throws -> ([GroupPlan], [(String, String)]) {
        let modules = adapter.modules.filter { if case .tuckerSlice = $0.update { return false }; return true }
        var notes: [(String, String)] = []
        if kind.splitsHeads, heads == nil {
            throw ConvertError(.invalidOptions, "--group \(kind.rawValue) splits outputs into attention heads: give --heads H")
        }
        if kind == .module {
            return (modules.map { single($0) }, [])
        }
        let paths = Dictionary(uniqueKeysWithValues: modules.map { ($0.name, ModulePath($0.name)) })
        // The projection family: given, or the first known family present.
        let family: [String] = projections ?? knownFamilies.first { f in modules.contains { f.contains(paths[$0.name]!.projection) } } ?? []  // safe: every module has a path
        if kind.stacksProjections, family.isEmpty {
            throw ConvertError(.invalidOptions, "no q/k/v projections found to stack; name them with --projections a,b,c")
        }
        let split = kind.splitsHeads ? try HeadSplit(modules: modules, paths: paths, projections: projections, heads: heads ?? 1, keyValueHeads: keyValueHeads) : nil
        // Bucket modules by what stays fixed within a group.
        var buckets: [String: [AdapterModule]] = [:]
        var order: [String] = []
        var moduleHeads: [String: Int] = [:]
        for m in modules {
            let p = paths[m.name]!  // safe: built from the same list
            let inFamily = family.contains(p.projection)
            if kind.stacksProjections && !inFamily {
                notes.append((m.name, "not one of the stacked projections \(family.joined(separator: ","))"))
                continue
            }
            if let split {
                switch split.heads(of: m, projection: p.projection) {
                case .success(let h): moduleHeads[m.name] = h
                case .failure(let why):
                    notes.append((m.name, why.message))
                    continue
                }
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
            let groupHeads = moduleHeads[members[0].name]
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
                                   out: members[0].outFeatures, inFeatures: members[0].inFeatures, heads: groupHeads))
            if let h = groupHeads, let split {
                notes.append((name, "outputs split into \(h) heads of \(members[0].outFeatures / h)"
                    + (split.isKeyValue(paths[members[0].name]!.projection) && h != split.queryHeads ? " (key/value heads)" : "")))  // safe: as above
            }
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

/// How the att constructions split each module's outputs into heads.
struct HeadSplit {
    let family: [String]
    let queryHeads: Int
    let keyValueHeads: Int?
    /// Outputs per head, from a query projection (nil when the adapter has none).
    let headSize: Int?

    init(modules: [AdapterModule], paths: [String: ModulePath], projections: [String]?, heads: Int, keyValueHeads: Int?) throws {
        guard let family = Grouping.knownFamilies.first(where: { f in modules.contains { f.contains(paths[$0.name]!.projection) } }) else {  // safe: every module has a path
            throw ConvertError(.invalidOptions, "--group att… splits the outputs of attention q/k/v projections into heads, and this adapter has none "
                + "(known names: \(Grouping.knownFamilies.map { $0.joined(separator: "/") }.joined(separator: ", ")); GPT-2's fused c_attn is not split)")
        }
        if let p = projections, let other = p.first(where: { !family.contains($0) }) {
            throw ConvertError(.invalidOptions, "--group att… splits attention heads: \(other) is not a query, key or value projection (\(family.joined(separator: ", ")))")
        }
        self.family = family
        self.queryHeads = heads
        self.keyValueHeads = keyValueHeads
        if let q = modules.first(where: { paths[$0.name]!.projection == family[0] }) {  // safe: as above
            guard q.outFeatures % heads == 0 else {
                throw ConvertError(.shapeMismatch, "\(q.name): \(q.outFeatures) outputs do not split into \(heads) heads (--heads)")
            }
            headSize = q.outFeatures / heads
        } else {
            headSize = nil
        }
    }

    func isKeyValue(_ projection: String) -> Bool { family.dropFirst().contains(projection) }

    struct Refusal: Error { let message: String }

    /// The number of heads `m`'s outputs hold, or why it is not split.
    func heads(of m: AdapterModule, projection: String) -> Result<Int, Refusal> {
        guard family.contains(projection) else {
            return .failure(Refusal(message: "not a query, key or value projection: its outputs are not attention heads"))
        }
        var h = queryHeads
        if isKeyValue(projection) {
            if let kv = keyValueHeads {
                h = kv
            } else if let d = headSize {
                guard m.outFeatures % d == 0 else {
                    return .failure(Refusal(message: "\(m.outFeatures) outputs are not whole heads of \(d) (the query's head size); give --kv-heads"))
                }
                h = m.outFeatures / d
            }
        }
        guard m.outFeatures % h == 0 else { return .failure(Refusal(message: "\(m.outFeatures) outputs do not split into \(h) heads")) }
        if let d = headSize, m.outFeatures / h != d {
            return .failure(Refusal(message: "\(h) heads of \(m.outFeatures / h) differ from the query's head size \(d); check --heads/--kv-heads"))
        }
        return .success(h)
    }
}
