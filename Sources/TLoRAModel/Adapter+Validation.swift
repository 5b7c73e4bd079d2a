import TLoRAIO

/// The shapes of a module's update, enough to check it against its layer without any tensor data.
/// Readers that have only a file header (`tlora inspect`) check these; `Adapter.validate()` checks the
/// same rules on loaded tensors.
public enum UpdateShape: Sendable, Equatable {
    case lowRank(a: [Int], b: [Int])
    case tensorTrain(cores: [[Int]])
    case tuckerSlice(group: String, index: [Int])
    case dense([Int])
    /// TensorGuide: cores `[r, n, m, r']`, the latent's shape and the factor rank.
    case jointTrain(cores: [[Int]], latent: [Int], rank: Int)
}

/// The shapes of a Tucker group.
public struct TuckerGroupShape: Sendable, Equatable {
    public var name: String
    public var core: [Int]
    public var factors: [[Int]]
    public var modes: [TuckerMode]

    public init(name: String, core: [Int], factors: [[Int]], modes: [TuckerMode]) {
        self.name = name
        self.core = core
        self.factors = factors
        self.modes = modes
    }

    public var dimensions: [Int] { factors.map { $0.first ?? 0 } }
    public var outFeatures: Int { product(of: .row) }
    public var inFeatures: Int { product(of: .column) }
    public var memberDimensions: [Int] { zip(modes, dimensions).filter { $0.0.role == .member }.map(\.1) }

    private func product(of role: TuckerMode.Role) -> Int {
        CheckedSize.product(zip(modes, dimensions).filter { $0.0.role == role }.map(\.1)) ?? -1
    }
}

/// The structural rules every adapter obeys (docs/FORMAT.md, "Semantic rules").
public enum AdapterRules {
    /// Checks one Tucker group's shapes.
    public static func check(group: TuckerGroupShape) throws {
        func fail(_ problem: String) -> ModelError { ModelError("Tucker group \(group.name)", problem) }
        guard !group.name.isEmpty else { throw ModelError("Tucker group", "empty name") }
        let n = group.core.count
        guard n >= 2 else { throw fail("core must have at least 2 modes, got \(group.core)") }
        guard group.factors.count == n, group.modes.count == n else {
            throw fail("core has \(n) modes but there are \(group.factors.count) factors and \(group.modes.count) mode descriptions")
        }
        guard group.core.allSatisfy({ $0 > 0 }) else { throw fail("core has an empty mode: \(group.core)") }
        for k in 0..<n {
            let f = group.factors[k]
            guard f.count == 2, f[1] == group.core[k], f[0] > 0 else {
                throw fail("factor \(k) has shape \(f) but must be [I, \(group.core[k])] with I > 0")
            }
            let mode = group.modes[k]
            if mode.role == .member, !mode.labels.isEmpty, mode.labels.count != f[0] {
                throw fail("mode \(k) (\(mode.name)) has \(mode.labels.count) labels for \(f[0]) members")
            }
        }
        guard group.modes.contains(where: { $0.role == .row }), group.modes.contains(where: { $0.role == .column }) else {
            throw fail("needs at least one row mode and one column mode")
        }
        guard CheckedSize.product(group.dimensions) != nil else { throw fail("dimensions \(group.dimensions) overflow") }
    }

    /// Checks one module's shapes against its `out × in` and the groups it may refer to.
    public static func check(module name: String, outFeatures: Int, inFeatures: Int, scale: Double,
                             update: UpdateShape, doraMagnitude: [Int]?, groups: [String: TuckerGroupShape]) throws {
        func fail(_ problem: String) -> ModelError { ModelError(name, problem) }
        guard !name.isEmpty else { throw ModelError("module", "empty module name") }
        guard outFeatures > 0, inFeatures > 0 else { throw fail("ΔW shape \(outFeatures)×\(inFeatures) is empty") }
        guard scale.isFinite else { throw fail("scale \(scale) is not finite") }
        switch update {
        case .lowRank(let a, let b):
            guard a.count == 2, b.count == 2 else { throw fail("low-rank factors must be matrices, got A \(a) and B \(b)") }
            let r = a[0]
            guard r > 0 else { throw fail("rank 0") }
            guard a[1] == inFeatures else { throw fail("A is \(a[0])×\(a[1]) but the layer has \(inFeatures) inputs") }
            guard b == [outFeatures, r] else { throw fail("B is \(b[0])×\(b[1]) but must be \(outFeatures)×\(r) (out × rank of A)") }
        case .tensorTrain(let cores):
            guard !cores.isEmpty else { throw fail("tensor train without cores") }
            var previous = 1
            var rowProduct = 1, colProduct = 1
            for (k, core) in cores.enumerated() {
                guard core.count == 4 else { throw fail("TT core \(k) must be 4-D [r, m, n, r'], got \(core)") }
                guard core.allSatisfy({ $0 > 0 }) else { throw fail("TT core \(k) has an empty dimension: \(core)") }
                guard core[0] == previous else { throw fail("TT core \(k) starts with rank \(core[0]) but the previous core ends with \(previous)") }
                guard let r = CheckedSize.multiply(rowProduct, core[1]), let c = CheckedSize.multiply(colProduct, core[2]) else {
                    throw fail("TT mode sizes overflow")
                }
                rowProduct = r
                colProduct = c
                previous = core[3]
            }
            guard previous == 1 else { throw fail("last TT core must end with rank 1, got \(previous)") }
            guard rowProduct == outFeatures, colProduct == inFeatures else {
                throw fail("TT row modes multiply to \(rowProduct) and column modes to \(colProduct), but ΔW is \(outFeatures)×\(inFeatures)")
            }
        case .tuckerSlice(let groupName, let index):
            guard let group = groups[groupName] else { throw fail("refers to Tucker group \(groupName), which does not exist") }
            let memberDims = group.memberDimensions
            guard index.count == memberDims.count else {
                throw fail("slice index \(index) has \(index.count) entries but group \(groupName) has \(memberDims.count) member modes")
            }
            for (i, d) in zip(index, memberDims) where i < 0 || i >= d {
                throw fail("slice index \(index) is outside group \(groupName)'s member sizes \(memberDims)")
            }
            guard group.outFeatures == outFeatures, group.inFeatures == inFeatures else {
                throw fail("group \(groupName) holds \(group.outFeatures)×\(group.inFeatures) slices but the module is \(outFeatures)×\(inFeatures)")
            }
        case .dense(let delta):
            guard delta == [outFeatures, inFeatures] else { throw fail("dense ΔW is \(delta) but must be [\(outFeatures), \(inFeatures)]") }
        case .jointTrain(let cores, let latent, let rank):
            try checkJoint(cores: cores, latent: latent, rank: rank, outFeatures: outFeatures, inFeatures: inFeatures, fail: fail)
        }
        if let m = doraMagnitude, m != [outFeatures] {
            throw fail("DoRA magnitude has shape \(m) but must be [\(outFeatures)]")
        }
    }

    /// A joint train's cores chain (`r_0 = r_d = 1`, each core's first rank the previous core's last),
    /// its latent modes multiply to the latent's size and its generated modes to `rank · (in + out)`.
    static func checkJoint(cores: [[Int]], latent: [Int], rank: Int, outFeatures: Int, inFeatures: Int,
                           fail: (String) -> ModelError) throws {
        guard !cores.isEmpty else { throw fail("joint train without cores") }
        guard rank > 0 else { throw fail("joint train with rank \(rank)") }
        guard latent.count == 1 || (latent.count == 2 && latent[0] == 1) else {
            throw fail("joint-train latent must have shape [N] or [1, N], got \(latent)")
        }
        var previous = 1
        var latentProduct = 1, generated = 1
        for (k, core) in cores.enumerated() {
            guard core.count == 4 else { throw fail("joint-train core \(k) must be 4-D [r, n, m, r'], got \(core)") }
            guard core.allSatisfy({ $0 > 0 }) else { throw fail("joint-train core \(k) has an empty dimension: \(core)") }
            guard core[0] == previous else {
                throw fail("joint-train core \(k) starts with rank \(core[0]) but the previous core ends with \(previous)")
            }
            guard let l = CheckedSize.multiply(latentProduct, core[1]), let g = CheckedSize.multiply(generated, core[2]) else {
                throw fail("joint-train mode sizes overflow")
            }
            latentProduct = l
            generated = g
            previous = core[3]
        }
        guard previous == 1 else { throw fail("last joint-train core must end with rank 1, got \(previous)") }
        guard CheckedSize.product(latent) == latentProduct else {
            throw fail("joint-train latent modes multiply to \(latentProduct) but the latent holds \(CheckedSize.product(latent) ?? -1) values")
        }
        guard let sides = CheckedSize.add(inFeatures, outFeatures), let needed = CheckedSize.multiply(rank, sides), needed == generated else {
            throw fail("joint-train generated modes multiply to \(generated) but rank \(rank) factors of a \(outFeatures)×\(inFeatures) layer need \(rank) × (\(inFeatures) + \(outFeatures))")
        }
    }

    /// Checks names across the adapter: unique modules, one update per target, one module per slice,
    /// each target replaced at most once. A target may be both replaced and updated: the update then
    /// applies to the replacement (PEFT saves an adapted embedding's base weights this way).
    public static func checkNames(modules: [(name: String, target: String, slice: String?)], replacedTargets: [String], groupNames: [String]) throws {
        var groups = Set<String>()
        for g in groupNames where !groups.insert(g).inserted { throw ModelError(g, "Tucker group name used twice") }
        var names = Set<String>(), targets = Set<String>(), slices = Set<String>()
        for m in modules {
            guard names.insert(m.name).inserted else { throw ModelError(m.name, "module listed twice") }
            guard !m.target.isEmpty else { throw ModelError(m.name, "empty target tensor name") }
            guard targets.insert(m.target).inserted else { throw ModelError(m.name, "another module already updates \(m.target)") }
            if let s = m.slice, !slices.insert(s).inserted { throw ModelError(m.name, "another module already uses Tucker slice \(s)") }
        }
        var replaced = Set<String>()
        for t in replacedTargets {
            guard !t.isEmpty else { throw ModelError("replaced tensor", "empty target name") }
            guard replaced.insert(t).inserted else { throw ModelError(t, "replaced twice") }
        }
    }
}

extension Adapter {
    /// Checks that every part fits together (`AdapterRules` on the loaded tensors' shapes).
    ///
    /// - Throws: `ModelError` naming the first module, group or tensor at fault.
    public func validate() throws {
        var groups: [String: TuckerGroupShape] = [:]
        for g in tuckerGroups {
            let shape = g.shape
            try AdapterRules.check(group: shape)
            groups[g.name] = shape
        }
        try AdapterRules.checkNames(modules: modules.map { ($0.name, $0.target, $0.sliceKey) },
                                    replacedTargets: replacedTensors.map(\.target), groupNames: tuckerGroups.map(\.name))
        for m in modules {
            try AdapterRules.check(module: m.name, outFeatures: m.outFeatures, inFeatures: m.inFeatures, scale: m.scale,
                                   update: m.update.shape, doraMagnitude: m.doraMagnitude?.shape, groups: groups)
        }
    }
}

extension ModuleUpdate {
    /// The shapes of this update's tensors.
    public var shape: UpdateShape {
        switch self {
        case .lowRank(let a, let b): return .lowRank(a: a.shape, b: b.shape)
        case .tensorTrain(let tt): return .tensorTrain(cores: tt.cores.map(\.shape))
        case .tuckerSlice(let g, let i): return .tuckerSlice(group: g, index: i)
        case .dense(let d): return .dense(d.shape)
        case .jointTrain(let j): return .jointTrain(cores: j.cores.map(\.shape), latent: j.latent.shape, rank: j.rank)
        }
    }
}

extension AdapterModule {
    /// "group/i,j" for a Tucker slice, used to check that no two modules share one.
    var sliceKey: String? {
        if case .tuckerSlice(let g, let index) = update { return g + "/" + index.map(String.init).joined(separator: ",") }
        return nil
    }
}

extension TuckerGroup {
    public var shape: TuckerGroupShape {
        TuckerGroupShape(name: name, core: core.shape, factors: factors.map(\.shape), modes: modes)
    }
}
