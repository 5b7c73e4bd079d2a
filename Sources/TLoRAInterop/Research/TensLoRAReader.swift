import TLoRAIO
import TLoRAModel

/// ax-le/TensLoRA's Tucker adapters: per adapted projection `<module>.adapter.tensor_lora_module.`
/// `tucker_core` (`R_1 × … × R_N`) and `tucker_factors.<i>` (`I_i × R_i`), tltorch's
/// `T = core ×_1 U_1 ⋯ ×_N U_N`, plus tltorch's aliases `tltorch_tensor.core` /
/// `tltorch_tensor.factors.factor_<i>` of the same tensors. Modules of one construction share one
/// tensor; `tensor_to_update_matrix` takes the member's slice (`[:, …, qkv, layer]`) and unfolds it
/// on mode 0 (`tl.unfold`, row-major), so the update matrix is `in × out` with column
/// `o = d · H + h` (head index fastest) for the att constructions, and the adapter adds
/// `x @ (M · scaling)`: `ΔW = scaling · Mᵀ`. That is exactly a `TuckerGroup` with modes
/// `column:in`, `row:out` (or `row:head_dim`, `row:head`), then `member:projection` (q = 0, k = 1,
/// v = 2) and/or `member:layer`, core and factors kept bit for bit.
enum TensLoRAReader {
    /// TensLoRA's `tensor_method`s: whether they split heads, stack q/k/v, stack layers.
    static let constructions: [String: (heads: Bool, qkv: Bool, depth: Bool)] = [
        "att": (true, false, false), "qkv": (false, true, false), "depth": (false, false, true),
        "att_qkv": (true, true, false), "att_depth": (true, false, true), "qkv_depth": (false, true, true),
        "att_qkv_depth": (true, true, true),
    ]

    static let families: [[String]] = [["query", "key", "value"], ["q_proj", "k_proj", "v_proj"], ["q", "k", "v"], ["q_lin", "k_lin", "v_lin"]]

    private struct Parts {
        var core: StoredTensor?
        var factors: [Int: StoredTensor] = [:]
        var aliasCore: StoredTensor?
        var aliasFactors: [Int: StoredTensor] = [:]
    }

    static func adapter(_ tensors: [(name: String, tensor: StoredTensor)], path: String, options: ResearchOptions) throws -> Adapter {
        let scaling = try ResearchStateDict.alpha(options, .tensLoRA, path: path, hint: "TensLoRA's scaling, 1 by default in its code")
        guard let method = options.construction?.replacingHyphens, let kind = constructions[method] else {
            let given = options.construction.map { "--construction \($0) is not one of" } ?? "TensLoRA state dicts do not say which construction made them; give --construction, one of"
            throw InteropError(.needsOption, path, "\(given) att, qkv, depth, att-qkv, att-depth, qkv-depth, att-qkv-depth")
        }
        let marker = ".adapter.tensor_lora_module."
        var parts: [String: Parts] = [:]
        var order: [String] = []
        for (key, t) in tensors {
            guard let r = key.ranges(of: marker).last else {
                throw InteropError(.unexpectedTensor, path, "unexpected tensor \(key) in a TensLoRA state dict (only <module>.adapter.tensor_lora_module.* belong to the adapter)")
            }
            let module = try ResearchStateDict.moduleName(String(key[..<r.lowerBound]), options: options, path: path)
            let leaf = String(key[r.upperBound...])
            if parts[module] == nil { order.append(module) }
            var p = parts[module] ?? Parts()
            if leaf == "tucker_core" {
                p.core = t
            } else if let (_, i) = ResearchStateDict.indexed("." + leaf, marker: ".tucker_factors.") {
                guard p.factors[i] == nil else { throw InteropError(.unexpectedTensor, path, "\(key) appears twice") }
                p.factors[i] = t
            } else if leaf == "tltorch_tensor.core" {
                p.aliasCore = t
            } else if let (_, i) = ResearchStateDict.indexed(leaf, marker: "factor_"), leaf.hasPrefix("tltorch_tensor.factors.factor_") {
                p.aliasFactors[i] = t
            } else if leaf.hasPrefix("cp_") || leaf.contains(".cp_") {
                throw InteropError(.unsupported, path, "\(key): CP TensLoRA adapters are not supported (Tucker only)")
            } else {
                throw InteropError(.unexpectedTensor, path, "unexpected TensLoRA tensor \(key)")
            }
            parts[module] = p
        }
        let modeCount = 2 + (kind.heads ? 1 : 0) + (kind.qkv ? 1 : 0) + (kind.depth ? 1 : 0)
        // Per module: core, factors, its coordinates (projection, layer) and the key of the tensor it shares.
        var groups: [String: (core: StoredTensor, factors: [StoredTensor], members: [(String, [Int])], projections: [String])] = [:]
        var groupOrder: [String] = []
        var modules: [AdapterModule] = []
        for name in order {
            let p = parts[name] ?? Parts()
            guard let core = p.core else { throw InteropError(.missingTensor, path, "module \(name) has TensLoRA factors but no tucker_core") }
            let factors = try ResearchStateDict.ordered(p.factors, module: name, what: "tucker_factors", path: path)
            if let alias = p.aliasCore, alias != core { throw InteropError(.shapeMismatch, path, "module \(name): tltorch_tensor.core differs from tucker_core") }
            for (i, alias) in p.aliasFactors where i >= factors.count || alias != factors[i] {
                throw InteropError(.shapeMismatch, path, "module \(name): tltorch_tensor.factors.factor_\(i) differs from tucker_factors.\(i)")
            }
            guard factors.count == modeCount, core.shape.count == modeCount else {
                throw InteropError(.shapeMismatch, path, "module \(name): a \(method) tensor has \(modeCount) modes, but the core is \(core.shape) with \(factors.count) factors (is --construction right?)")
            }
            for (i, f) in factors.enumerated() {
                guard f.shape.count == 2, f.shape[1] == core.shape[i], f.shape[0] > 0 else {
                    throw InteropError(.shapeMismatch, path, "module \(name): tucker_factors.\(i) has shape \(f.shape) but the core's mode \(i) has rank \(core.shape[i])")
                }
                try ResearchStateDict.checkFinite(f, "module \(name): tucker_factors.\(i)", path: path)
            }
            try ResearchStateDict.checkFinite(core, "module \(name): tucker_core", path: path)
            let dims = factors.map { $0.shape[0] }
            let path_ = ModulePath(name)
            var index: [Int] = []
            var groupKey = method
            var projections: [String] = []
            var cursor = 2 + (kind.heads ? 1 : 0)
            if kind.qkv {
                guard dims[cursor] == 3 else { throw InteropError(.shapeMismatch, path, "module \(name): the q/k/v mode of a \(method) tensor must have size 3, got \(dims[cursor])") }
                guard let family = families.first(where: { $0.contains(path_.projection) }), let q = family.firstIndex(of: path_.projection) else {
                    throw InteropError(.unmatchedNames, path, "module \(name): \(path_.projection) is not a query, key or value projection")
                }
                index.append(q)
                projections = family
                cursor += 1
            } else {
                groupKey += "|" + path_.projection
            }
            if kind.depth {
                guard let l = path_.layer else { throw InteropError(.missingTensor, path, "module \(name) has no layer number to stack along") }
                guard l < dims[cursor] else { throw InteropError(.shapeMismatch, path, "module \(name): layer \(l) is outside the tensor's \(dims[cursor]) layers") }
                index.append(l)
            } else {
                groupKey += "|" + String(path_.layer ?? -1)
            }
            groupKey += "|" + path_.prefix
            let rows = kind.heads ? dims[1] * dims[2] : dims[1]
            if let base = options.baseShapes, let s = base.weightShape(of: name), s != [rows, dims[0]] {
                throw InteropError(.shapeMismatch, path, "module \(name): the TensLoRA tensor holds \(rows)×\(dims[0]) updates but the base's weight is \(s[0])×\(s[1]) (TensLoRA's Llama path averages GQA k/v outputs, which tlora does not represent)")
            }
            if let g = groups[groupKey] {
                guard g.core == core, g.factors == factors else {
                    throw InteropError(.shapeMismatch, path, "module \(name): construction \(method) shares one tensor between \(g.members[0].0) and \(name), but theirs differ (is --construction right?)")
                }
                groups[groupKey]?.members.append((name, index))
            } else {
                groups[groupKey] = (core, factors, [(name, index)], projections)
                groupOrder.append(groupKey)
            }
            modules.append(AdapterModule(name: name, outFeatures: rows, inFeatures: dims[0], scale: scaling,
                                         update: .tuckerSlice(group: "", index: index)))
        }
        // Name the groups and point the slices at them.
        var groupName: [String: String] = [:]
        var tuckerGroups: [TuckerGroup] = []
        for key in groupOrder {
            guard let g = groups[key] else { continue }
            let first = ModulePath(g.members[0].0)
            var name = first.prefix
            if !kind.depth, let l = first.layer { name += ".\(l)" }
            if !first.block.isEmpty { name += "." + first.block }
            name += "." + (kind.qkv ? g.projections.joined(separator: "+") : first.projection) + "[tenslora:\(method)]"
            let dims = g.factors.map { $0.shape[0] }
            var modes = [TuckerMode(role: .column, name: "in")]
            modes += kind.heads ? [TuckerMode(role: .row, name: "head_dim"), TuckerMode(role: .row, name: "head")] : [TuckerMode(role: .row, name: "out")]
            if kind.qkv { modes.append(TuckerMode(role: .member, name: "projection", labels: g.projections)) }
            if kind.depth { modes.append(TuckerMode(role: .member, name: "layer", labels: (0..<dims[dims.count - 1]).map(String.init))) }
            tuckerGroups.append(TuckerGroup(name: name, core: g.core, factors: g.factors, modes: modes))
            for (m, _) in g.members { groupName[m] = name }
        }
        for i in modules.indices {
            if case .tuckerSlice(_, let index) = modules[i].update, let g = groupName[modules[i].name] {
                modules[i].update = .tuckerSlice(group: g, index: index)
            }
        }
        var metadata = AdapterMetadata()
        metadata["tenslora.construction"] = method
        metadata["tenslora.scaling"] = "\(scaling)"
        return Adapter(metadata: metadata, modules: modules, tuckerGroups: tuckerGroups)
    }
}

extension String {
    /// `att-qkv` → `att_qkv`.
    var replacingHyphens: String { String(map { $0 == "-" ? "_" : $0 }) }
}
