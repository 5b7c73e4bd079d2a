import TLoRAIO
import TLoRAModel

/// Maps an `Adapter` to the header's records and back.
enum HeaderEncoding {
    struct NamedTensor {
        var name: String
        var tensor: StoredTensor
    }

    struct Document {
        var metadata: AdapterMetadata
        var modules: [ModuleRecord]
        var groups: [TuckerGroupRecord]
        var replaced: [ReplacedRecord]
        var projections: [ProjectionRecord]
        var bank: BankRecord? = nil
    }

    /// Hands out unique tensor names and collects the tensors in file order.
    struct Namer {
        var named: [NamedTensor] = []
        var used = Set<String>()

        mutating func add(_ base: String, _ t: StoredTensor) -> String {
            var name = base
            var n = 1
            while used.contains(name) {
                n += 1
                name = "\(base)#\(n)"
            }
            used.insert(name)
            named.append(NamedTensor(name: name, tensor: t))
            return name
        }
    }

    /// Names every tensor in file order: groups (`g<j>.core`, `g<j>.f<k>`), shared projections
    /// (`p<j>.a`, `p<j>.b`), modules (`m<i>.a`, `m<i>.b`, `m<i>.tt<k>`, `m<i>.delta`, `m<i>.dora`,
    /// `m<i>.w1.a`, …), replaced tensors (`r<i>`). Short names keep the header
    /// small (it is ~1% of a typical adapter file); the records say what each tensor is.
    static func layout(_ adapter: Adapter) -> (Document, [NamedTensor]) {
        var namer = Namer()
        var groups: [TuckerGroupRecord] = []
        for (j, g) in adapter.tuckerGroups.enumerated() {
            let core = namer.add("g\(j).core", g.core)
            let factors = g.factors.enumerated().map { namer.add("g\(j).f\($0.offset)", $0.element) }
            groups.append(TuckerGroupRecord(name: g.name, core: core, factors: factors, modes: g.modes, conversion: g.conversion))
        }
        let projections = adapter.projections.enumerated().map { j, p in
            ProjectionRecord(name: p.name, a: namer.add("p\(j).a", p.a), b: namer.add("p\(j).b", p.b))
        }
        let modules = adapter.modules.enumerated().map { i, m in record(m, prefix: "m\(i)", namer: &namer) }
        let replaced = adapter.replacedTensors.enumerated().map { i, r in
            ReplacedRecord(target: r.target, tensor: namer.add("r\(i)", r.value), sourceName: r.sourceName)
        }
        return (Document(metadata: adapter.metadata, modules: modules, groups: groups, replaced: replaced, projections: projections), namer.named)
    }

    /// A module's record, naming its tensors `<prefix>.a`, `<prefix>.b`, `<prefix>.tt<k>`, ….
    static func record(_ m: AdapterModule, prefix i: String, namer: inout Namer) -> ModuleRecord {
        func add(_ base: String, _ t: StoredTensor) -> String { namer.add(base, t) }
        func factor(_ f: FactorMatrix, _ base: String) -> ModuleRecord.Factor {
            switch f {
            case .full(let m): return .full(add(base, m))
            case .lowRank(let a, let b): return .lowRank(a: add(base + ".a", a), b: add(base + ".b", b))
            case .tucker(let t): return .tucker(core: add(base + ".core", t.core), a: add(base + ".a", t.a), b: add(base + ".b", t.b))
            }
        }
        let update: ModuleRecord.Update
        switch m.update {
        case .lowRank(let a, let b): update = .lowRank(a: add("\(i).a", a), b: add("\(i).b", b))
        case .tensorTrain(let tt):
            update = .tensorTrain(cores: tt.cores.enumerated().map { add("\(i).tt\($0.offset)", $0.element) },
                                  rowOrder: tt.rowOrder, columnOrder: tt.columnOrder)
        case .tuckerSlice(let g, let index): update = .tuckerSlice(group: g, index: index)
        case .dense(let d): update = .dense(delta: add("\(i).delta", d))
        case .jointTrain(let j):
            update = .jointTrain(cores: j.cores.enumerated().map { add("\(i).jt\($0.offset)", $0.element) },
                                 latent: add("\(i).z", j.latent), rank: j.rank)
        case .convTucker(let t):
            update = .convTucker(core: add("\(i).core", t.core), a: add("\(i).a", t.a), b: add("\(i).b", t.b))
        case .kronecker(let k): update = .kronecker(w1: factor(k.w1, "\(i).w1"), w2: factor(k.w2, "\(i).w2"))
        case .hadamard(let h): update = .hadamard(p1: factor(h.p1, "\(i).p1"), p2: factor(h.p2, "\(i).p2"))
        case .diagonalLowRank(let a, let b, let e): update = .diagonalLowRank(a: add("\(i).a", a), b: add("\(i).b", b), e: add("\(i).e", e))
        case .vera(let v):
            update = .vera(projections: v.projections, lambdaB: add("\(i).lambda_b", v.lambdaB), lambdaD: add("\(i).lambda_d", v.lambdaD))
        case .featureScale(let f): update = .featureScale(vector: add("\(i).v", f.vector), axis: f.axis)
        }
        let dora = m.doraMagnitude.map { add("\(i).dora", $0) }
        let bias = m.biasDelta.map { add("\(i).bias", $0) }
        return ModuleRecord(name: m.name, target: m.target, kind: m.kind, layout: m.layout, outFeatures: m.outFeatures,
                            inFeatures: m.inFeatures, scale: m.scale, update: update, doraMagnitude: dora,
                            doraAxis: m.doraAxis, doraEpsilon: m.doraEpsilon, kernel: m.kernel, biasDelta: bias,
                            conversion: m.conversion, attributes: m.attributes)
    }

    /// A bank's records: bases first (`k<j>.u`, `k<j>.v`), then each member's tensors together
    /// (`b<i>.m<j>.c`, `b<i>.m<j>.dora`, `b<i>.r<j>`), so one member's cores are contiguous.
    static func layout(_ bank: AdapterBank) -> (Document, [NamedTensor]) {
        var namer = Namer()
        let bases = bank.bases.enumerated().map { j, b in
            BankRecord.Basis(name: b.name, module: b.module, cluster: b.cluster, outBasis: namer.add("k\(j).u", b.outBasis),
                             inBasis: namer.add("k\(j).v", b.inBasis), conversion: b.conversion)
        }
        let members = bank.members.enumerated().map { i, member in
            let modules = member.modules.enumerated().map { j, m in
                ModuleRecord(name: m.name, target: m.target, kind: m.kind, layout: m.layout, outFeatures: m.outFeatures,
                             inFeatures: m.inFeatures, scale: m.scale, update: .bankCore(basis: m.basis, core: namer.add("b\(i).m\(j).c", m.core)),
                             doraMagnitude: m.doraMagnitude.map { namer.add("b\(i).m\(j).dora", $0) },
                             conversion: m.conversion, attributes: m.attributes)
            }
            let replaced = member.replacedTensors.enumerated().map { j, r in
                ReplacedRecord(target: r.target, tensor: namer.add("b\(i).r\(j)", r.value), sourceName: r.sourceName)
            }
            return BankRecord.Member(name: member.name, cluster: member.cluster, metadata: member.metadata, modules: modules,
                                     replaced: replaced, sourceBytes: member.sourceBytes)
        }
        let record = BankRecord(bases: bases, members: members, conversion: bank.conversion)
        return (Document(metadata: bank.metadata, modules: [], groups: [], replaced: [], projections: [], bank: record), namer.named)
    }

    /// The header JSON document.
    static func document(_ d: Document, tensors: [TensorEntry]) -> JSONValue {
        var root = JSONObject()
        root["format"] = JSONValue("tlora")
        root["version"] = JSONValue("\(ContainerLayout.majorVersion).\(ContainerLayout.minorVersion)")
        var features = requiredFeatures(d.modules + (d.bank?.members.flatMap(\.modules) ?? []))
        if d.bank != nil, !features.contains(ContainerLayout.bankFeature) { features = (features + [ContainerLayout.bankFeature]).sorted() }
        root["required_features"] = JSONValue(features)
        root["metadata"] = .object(JSONObject(d.metadata.entries.map { ($0.key, JSONValue($0.value)) }))
        root["tensors"] = .array(tensors.map { t in
            .object(JSONObject([
                ("name", JSONValue(t.name)), ("dtype", JSONValue(FormatVocabulary.name(of: t.dtype))), ("shape", JSONValue(t.shape)),
                ("codec", JSONValue(t.codec.rawValue)), ("offset", JSONValue(t.offset)), ("length", JSONValue(t.length)),
                ("xxh64", JSONValue(XXH64.hex(t.checksum))),
            ]))
        })
        root["modules"] = .array(d.modules.map(encode))
        root["tucker_groups"] = .array(d.groups.map(encode))
        // Written only when present, so files without VeRA read as version 1.0 wrote them.
        if !d.projections.isEmpty {
            root["projections"] = .array(d.projections.map { p in
                .object(JSONObject([("name", JSONValue(p.name)), ("a", JSONValue(p.a)), ("b", JSONValue(p.b))]))
            })
        }
        root["replaced_tensors"] = .array(d.replaced.map(encode))
        if let bank = d.bank { root["bank"] = encode(bank) }
        return .object(root)
    }

    private static func encode(_ r: ReplacedRecord) -> JSONValue {
        var o = JSONObject([("target", JSONValue(r.target)), ("tensor", JSONValue(r.tensor))])
        if let s = r.sourceName { o["source_name"] = JSONValue(s) }
        return .object(o)
    }

    private static func encode(_ bank: BankRecord) -> JSONValue {
        var o = JSONObject()
        if let c = bank.conversion { o["conversion"] = encode(c) }
        o["bases"] = .array(bank.bases.map { b in
            var e = JSONObject([("name", JSONValue(b.name)), ("module", JSONValue(b.module)), ("cluster", JSONValue(b.cluster)),
                                ("out", JSONValue(b.outBasis)), ("in", JSONValue(b.inBasis))])
            if let c = b.conversion { e["conversion"] = encode(c) }
            return .object(e)
        })
        o["members"] = .array(bank.members.map { m in
            var e = JSONObject([("name", JSONValue(m.name)), ("cluster", JSONValue(m.cluster))])
            e["metadata"] = .object(JSONObject(m.metadata.entries.map { ($0.key, JSONValue($0.value)) }))
            e["modules"] = .array(m.modules.map(encode))
            if !m.replaced.isEmpty { e["replaced_tensors"] = .array(m.replaced.map(encode)) }
            if let b = m.sourceBytes { e["source_bytes"] = JSONValue(b) }
            return .object(e)
        })
        return .object(o)
    }

    /// The features a reader must know to read these modules correctly (docs/FORMAT.md §2.1).
    static func requiredFeatures(_ modules: [ModuleRecord]) -> [String] {
        var features: [String] = []
        func need(_ f: String) { if !features.contains(f) { features.append(f) } }
        for m in modules {
            if case .tensorTrain(_, let r, let c) = m.update, r != .forward || c != .forward { need(ContainerLayout.ttIndexOrderFeature) }
            if let f = ContainerLayout.feature(of: m.update.kind) { need(f) }
            if !m.kernel.isEmpty { need(ContainerLayout.convKernelFeature) }
            if m.doraMagnitude != nil, m.doraAxis == .in { need(ContainerLayout.doraInAxisFeature) }
            if m.biasDelta != nil { need(ContainerLayout.biasDeltaFeature) }
        }
        return features.sorted()
    }

    static func encode(_ c: ConversionRecord) -> JSONValue {
        var o = JSONObject()
        o["method"] = JSONValue(c.method)
        if let v = c.maxRelativeError { o["max_rel_error"] = JSONValue(v) }
        if let v = c.relativeError { o["rel_error"] = JSONValue(v) }
        if let v = c.sourceParameters { o["source_parameters"] = JSONValue(v) }
        if let v = c.note { o["note"] = JSONValue(v) }
        return .object(o)
    }

    private static func encode(_ m: ModuleRecord) -> JSONValue {
        var o = JSONObject()
        o["name"] = JSONValue(m.name)
        // Defaults are omitted: target `<name>.weight`, kind `linear`, layout `out_in`.
        if m.target != m.name + ".weight" { o["target"] = JSONValue(m.target) }
        if m.kind != .linear { o["kind"] = JSONValue(m.kind.rawValue) }
        if m.layout != .outIn { o["layout"] = JSONValue(m.layout.rawValue) }
        o["shape"] = JSONValue([m.outFeatures, m.inFeatures])
        if !m.kernel.isEmpty { o["kernel"] = JSONValue(m.kernel) }
        o["scale"] = JSONValue(m.scale)
        var u = JSONObject()
        u["type"] = JSONValue(FormatVocabulary.name(of: m.update.kind))
        switch m.update {
        case .lowRank(let a, let b):
            u["a"] = JSONValue(a)
            u["b"] = JSONValue(b)
        case .tensorTrain(let cores, let rowOrder, let columnOrder):
            u["cores"] = JSONValue(cores)
            // Defaults are omitted, so trains in the default order read as version 1.0 wrote them.
            if rowOrder != .forward { u["row_order"] = JSONValue(rowOrder.rawValue) }
            if columnOrder != .forward { u["column_order"] = JSONValue(columnOrder.rawValue) }
        case .tuckerSlice(let g, let i):
            u["group"] = JSONValue(g)
            u["index"] = JSONValue(i)
        case .dense(let d):
            u["delta"] = JSONValue(d)
        case .jointTrain(let cores, let latent, let rank):
            u["cores"] = JSONValue(cores)
            u["latent"] = JSONValue(latent)
            u["rank"] = JSONValue(rank)
        case .convTucker(let core, let a, let b):
            u["core"] = JSONValue(core)
            u["a"] = JSONValue(a)
            u["b"] = JSONValue(b)
        case .kronecker(let w1, let w2):
            u["w1"] = encode(w1)
            u["w2"] = encode(w2)
        case .hadamard(let p1, let p2):
            u["p1"] = encode(p1)
            u["p2"] = encode(p2)
        case .diagonalLowRank(let a, let b, let e):
            u["a"] = JSONValue(a)
            u["b"] = JSONValue(b)
            u["e"] = JSONValue(e)
        case .vera(let p, let lb, let ld):
            u["projections"] = JSONValue(p)
            u["lambda_b"] = JSONValue(lb)
            u["lambda_d"] = JSONValue(ld)
        case .featureScale(let v, let axis):
            u["vector"] = JSONValue(v)
            u["axis"] = JSONValue(axis.rawValue)
        case .bankCore(let basis, let core):
            u["basis"] = JSONValue(basis)
            u["core"] = JSONValue(core)
        }
        o["update"] = .object(u)
        if let d = m.doraMagnitude {
            o["dora_magnitude"] = JSONValue(d)
            if m.doraAxis != .out { o["dora_axis"] = JSONValue(m.doraAxis.rawValue) }
            if m.doraEpsilon != 0 { o["dora_epsilon"] = JSONValue(m.doraEpsilon) }
        }
        if let b = m.biasDelta { o["bias_delta"] = JSONValue(b) }
        if let c = m.conversion { o["conversion"] = encode(c) }
        if !m.attributes.isEmpty {
            o["attributes"] = .object(JSONObject(m.attributes.sorted { $0.key < $1.key }.map { ($0.key, JSONValue($0.value)) }))
        }
        return .object(o)
    }

    private static func encode(_ f: ModuleRecord.Factor) -> JSONValue {
        switch f {
        case .full(let m): return .object(JSONObject([("form", JSONValue("full")), ("matrix", JSONValue(m))]))
        case .lowRank(let a, let b): return .object(JSONObject([("form", JSONValue("low_rank")), ("a", JSONValue(a)), ("b", JSONValue(b))]))
        case .tucker(let c, let a, let b):
            return .object(JSONObject([("form", JSONValue("tucker")), ("core", JSONValue(c)), ("a", JSONValue(a)), ("b", JSONValue(b))]))
        }
    }

    private static func encode(_ g: TuckerGroupRecord) -> JSONValue {
        var o = JSONObject()
        o["name"] = JSONValue(g.name)
        o["core"] = JSONValue(g.core)
        o["factors"] = JSONValue(g.factors)
        o["modes"] = .array(g.modes.map { mode in
            var m = JSONObject()
            m["role"] = JSONValue(mode.role.rawValue)
            m["name"] = JSONValue(mode.name)
            if !mode.labels.isEmpty { m["labels"] = JSONValue(mode.labels) }
            return .object(m)
        })
        if let c = g.conversion { o["conversion"] = encode(c) }
        return .object(o)
    }

    /// Rebuilds the adapter, fetching each tensor through `tensor(name)`.
    static func adapter(_ h: ContainerHeader, tensor: (String) throws -> StoredTensor) throws -> Adapter {
        let groups = try h.tuckerGroups.map { g in
            TuckerGroup(name: g.name, core: try tensor(g.core), factors: try g.factors.map(tensor), modes: g.modes, conversion: g.conversion)
        }
        let projections = try h.projections.map { ProjectionPair(name: $0.name, a: try tensor($0.a), b: try tensor($0.b)) }
        func factor(_ f: ModuleRecord.Factor) throws -> FactorMatrix {
            switch f {
            case .full(let m): return .full(try tensor(m))
            case .lowRank(let a, let b): return .lowRank(a: try tensor(a), b: try tensor(b))
            case .tucker(let c, let a, let b): return .tucker(TuckerFactors(core: try tensor(c), a: try tensor(a), b: try tensor(b)))
            }
        }
        let modules = try h.modules.map { m -> AdapterModule in
            let update: ModuleUpdate
            switch m.update {
            case .lowRank(let a, let b): update = .lowRank(a: try tensor(a), b: try tensor(b))
            case .tensorTrain(let cores, let rowOrder, let columnOrder):
                update = .tensorTrain(TensorTrain(cores: try cores.map(tensor), rowOrder: rowOrder, columnOrder: columnOrder))
            case .tuckerSlice(let g, let i): update = .tuckerSlice(group: g, index: i)
            case .dense(let d): update = .dense(try tensor(d))
            case .jointTrain(let cores, let latent, let rank):
                update = .jointTrain(JointTrain(cores: try cores.map(tensor), latent: try tensor(latent), rank: rank))
            case .convTucker(let c, let a, let b): update = .convTucker(TuckerFactors(core: try tensor(c), a: try tensor(a), b: try tensor(b)))
            case .kronecker(let w1, let w2): update = .kronecker(Kronecker(w1: try factor(w1), w2: try factor(w2)))
            case .hadamard(let p1, let p2): update = .hadamard(Hadamard(p1: try factor(p1), p2: try factor(p2)))
            case .diagonalLowRank(let a, let b, let e): update = .diagonalLowRank(a: try tensor(a), b: try tensor(b), e: try tensor(e))
            case .vera(let p, let lb, let ld): update = .vera(VeRAUpdate(projections: p, lambdaB: try tensor(lb), lambdaD: try tensor(ld)))
            case .featureScale(let v, let axis): update = .featureScale(FeatureScale(vector: try tensor(v), axis: axis))
            case .bankCore:
                // Unreachable: `checkSemantics` refuses bank cores outside a bank's members.
                throw FormatError.invalidAdapter(path: "", problem: "module \(m.name): bank_core outside a bank")
            }
            return AdapterModule(name: m.name, target: m.target, kind: m.kind, layout: m.layout, outFeatures: m.outFeatures,
                                 inFeatures: m.inFeatures, scale: m.scale, update: update,
                                 doraMagnitude: try m.doraMagnitude.map(tensor), doraAxis: m.doraAxis, doraEpsilon: m.doraEpsilon,
                                 kernel: m.kernel, biasDelta: try m.biasDelta.map(tensor), conversion: m.conversion, attributes: m.attributes)
        }
        let replaced = try h.replaced.map { ReplacedTensor(target: $0.target, value: try tensor($0.tensor), sourceName: $0.sourceName) }
        return Adapter(metadata: h.metadata, modules: modules, tuckerGroups: groups, replacedTensors: replaced, projections: projections)
    }
}

extension HeaderEncoding {
    /// Rebuilds a bank. `members` limits which members are loaded (nil: all), and then only the
    /// bases they use: `tlora bank get` reads one member's cores and its bases, nothing else.
    static func bank(_ h: ContainerHeader, members names: Set<String>? = nil, tensor: (String) throws -> StoredTensor) throws -> AdapterBank {
        guard let record = h.bank else { return AdapterBank() }
        let members = try record.members.filter { names?.contains($0.name) ?? true }.map { m in
            let modules = try m.modules.map { r -> BankModule in
                guard case .bankCore(let basis, let core) = r.update else {
                    // Unreachable: `checkSemantics` refuses members with other updates.
                    throw FormatError.invalidAdapter(path: "", problem: "bank member \(m.name): module \(r.name) is not a bank_core")
                }
                return BankModule(name: r.name, target: r.target, kind: r.kind, layout: r.layout, outFeatures: r.outFeatures,
                                  inFeatures: r.inFeatures, scale: r.scale, basis: basis, core: try tensor(core),
                                  doraMagnitude: try r.doraMagnitude.map(tensor), conversion: r.conversion, attributes: r.attributes)
            }
            let replaced = try m.replaced.map { ReplacedTensor(target: $0.target, value: try tensor($0.tensor), sourceName: $0.sourceName) }
            return BankMember(name: m.name, cluster: m.cluster, metadata: m.metadata, modules: modules, replacedTensors: replaced, sourceBytes: m.sourceBytes)
        }
        let needed = Set(members.flatMap { $0.modules.map(\.basis) })
        let bases = try record.bases.filter { names == nil || needed.contains($0.name) }.map { b in
            BankBasis(name: b.name, module: b.module, cluster: b.cluster, outBasis: try tensor(b.outBasis), inBasis: try tensor(b.inBasis),
                      conversion: b.conversion)
        }
        return AdapterBank(metadata: h.metadata, bases: bases, members: members, conversion: record.conversion)
    }
}
