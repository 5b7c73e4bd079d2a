import TLoRAIO

/// A bank's shapes, enough to check it without tensor data (the `.tlora` reader checks a header with
/// it; `AdapterBank.validate()` checks loaded tensors the same way).
public struct BankShape: Sendable, Equatable {
    public struct Basis: Sendable, Equatable {
        public var name: String
        public var module: String
        public var cluster: Int
        public var outBasis: [Int]
        public var inBasis: [Int]

        public init(name: String, module: String, cluster: Int, outBasis: [Int], inBasis: [Int]) {
            self.name = name
            self.module = module
            self.cluster = cluster
            self.outBasis = outBasis
            self.inBasis = inBasis
        }
    }

    public struct Module: Sendable, Equatable {
        public var name: String
        public var target: String
        public var outFeatures: Int
        public var inFeatures: Int
        public var scale: Double
        public var basis: String
        public var core: [Int]
        public var doraMagnitude: [Int]?

        public init(name: String, target: String, outFeatures: Int, inFeatures: Int, scale: Double, basis: String, core: [Int], doraMagnitude: [Int]?) {
            self.name = name
            self.target = target
            self.outFeatures = outFeatures
            self.inFeatures = inFeatures
            self.scale = scale
            self.basis = basis
            self.core = core
            self.doraMagnitude = doraMagnitude
        }
    }

    public struct Member: Sendable, Equatable {
        public var name: String
        public var cluster: Int
        public var modules: [Module]
        public var replacedTargets: [String]

        public init(name: String, cluster: Int, modules: [Module], replacedTargets: [String]) {
            self.name = name
            self.cluster = cluster
            self.modules = modules
            self.replacedTargets = replacedTargets
        }
    }

    public var bases: [Basis]
    public var members: [Member]

    public init(bases: [Basis], members: [Member]) {
        self.bases = bases
        self.members = members
    }
}

extension AdapterRules {
    /// Checks a bank (docs/FORMAT.md §2.8): unique member and basis names, one basis per module and
    /// cluster, basis shapes `[out, k_out]` / `[in, k_in]` with `k ≥ 1`, and for every member module a
    /// basis of its own module and cluster whose dimensions are the module's and a core
    /// `[k_out, k_in]`; every basis serves at least one member.
    public static func check(bank: BankShape) throws {
        var bases: [String: BankShape.Basis] = [:]
        var slots = Set<String>()
        for b in bank.bases {
            func fail(_ problem: String) -> ModelError { ModelError(.shapeMismatch, "bank basis \(b.name)", problem) }
            guard !b.name.isEmpty else { throw ModelError(.emptyName, "bank basis", "empty name") }
            guard bases[b.name] == nil else { throw fail("name used twice") }
            guard !b.module.isEmpty else { throw fail("empty module name") }
            guard b.cluster >= 0 else { throw fail("cluster \(b.cluster) is negative") }
            guard slots.insert("\(b.cluster)|\(b.module)").inserted else {
                throw fail("cluster \(b.cluster) already has bases for module \(b.module)")
            }
            for (what, s) in [("out", b.outBasis), ("in", b.inBasis)] {
                guard s.count == 2, s[0] > 0, s[1] > 0 else { throw fail("\(what) basis has shape \(s) but must be [\(what), k] with both > 0") }
                guard s[1] <= s[0] else { throw fail("\(what) basis \(s) has more columns than rows, so they cannot be orthonormal") }
            }
            bases[b.name] = b
        }
        var used = Set<String>()
        var names = Set<String>()
        for member in bank.members {
            guard !member.name.isEmpty else { throw ModelError(.emptyName, "bank member", "empty name") }
            guard names.insert(member.name).inserted else { throw ModelError(.duplicateName, "bank member \(member.name)", "name used twice") }
            guard member.cluster >= 0 else { throw ModelError(.invalidValue, "bank member \(member.name)", "cluster \(member.cluster) is negative") }
            do {
                try checkNames(modules: member.modules.map { ($0.name, $0.target, nil) }, replacedTargets: member.replacedTargets, groupNames: [])
                for m in member.modules {
                    func fail(_ problem: String) -> ModelError { ModelError(m.name, problem) }
                    guard !m.name.isEmpty else { throw ModelError(.emptyName, "module", "empty module name") }
                    guard m.outFeatures > 0, m.inFeatures > 0 else { throw fail("ΔW shape \(m.outFeatures)×\(m.inFeatures) is empty") }
                    guard m.scale.isFinite else { throw fail("scale \(m.scale) is not finite") }
                    guard let b = bases[m.basis] else { throw fail("refers to bank basis \(m.basis), which does not exist") }
                    guard b.module == m.name else { throw fail("refers to bank basis \(m.basis), which holds module \(b.module)") }
                    guard b.cluster == member.cluster else {
                        throw fail("refers to bank basis \(m.basis) of cluster \(b.cluster) but the member is in cluster \(member.cluster)")
                    }
                    guard b.outBasis[0] == m.outFeatures, b.inBasis[0] == m.inFeatures else {
                        throw fail("bank basis \(m.basis) holds \(b.outBasis[0])×\(b.inBasis[0]) updates but the module is \(m.outFeatures)×\(m.inFeatures)")
                    }
                    guard m.core == [b.outBasis[1], b.inBasis[1]] else {
                        throw fail("core has shape \(m.core) but bank basis \(m.basis) needs [\(b.outBasis[1]), \(b.inBasis[1])]")
                    }
                    if let d = m.doraMagnitude, d != [m.outFeatures] {
                        throw fail("DoRA magnitude has shape \(d) but must be [\(m.outFeatures)]")
                    }
                    used.insert(m.basis)
                }
            } catch let e as ModelError {
                throw ModelError(e.code, "bank member \(member.name): \(e.subject)", e.problem)
            }
        }
        if let unused = bank.bases.first(where: { !used.contains($0.name) }) {
            throw ModelError(.unusedPart, "bank basis \(unused.name)", "no member module uses it")
        }
    }
}

extension AdapterBank {
    public var shape: BankShape {
        BankShape(
            bases: bases.map { BankShape.Basis(name: $0.name, module: $0.module, cluster: $0.cluster, outBasis: $0.outBasis.shape, inBasis: $0.inBasis.shape) },
            members: members.map { m in
                BankShape.Member(name: m.name, cluster: m.cluster, modules: m.modules.map {
                    BankShape.Module(name: $0.name, target: $0.target, outFeatures: $0.outFeatures, inFeatures: $0.inFeatures, scale: $0.scale,
                                     basis: $0.basis, core: $0.core.shape, doraMagnitude: $0.doraMagnitude?.shape)
                }, replacedTargets: m.replacedTensors.map(\.target))
            })
    }

    /// Checks that every part fits together (`AdapterRules.check(bank:)` on the loaded shapes).
    public func validate() throws {
        try AdapterRules.check(bank: shape)
    }
}
