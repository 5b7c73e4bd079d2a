import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// One blob's entry in the header.
public struct TensorEntry: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var codec: Codec
    /// Offset of the blob from the start of the data section (a multiple of 64).
    public var offset: Int
    /// Stored (encoded) length in bytes.
    public var length: Int
    /// XXH64 of the stored bytes.
    public var checksum: UInt64

    public var elementCount: Int { shape.reduce(1, *) }
    /// `product(shape) × width`, checked against overflow when the header is parsed.
    public var decodedLength: Int { elementCount * dtype.byteWidth }
}

/// A module as the header describes it: tensors are referenced by name.
public struct ModuleRecord: Sendable, Equatable {
    /// A `FactorMatrix` as the header describes it (docs/FORMAT.md §2.3.1).
    public enum Factor: Sendable, Equatable {
        case full(String)
        case lowRank(a: String, b: String)
        case tucker(core: String, a: String, b: String)

        public var tensorNames: [String] {
            switch self {
            case .full(let m): return [m]
            case .lowRank(let a, let b): return [a, b]
            case .tucker(let c, let a, let b): return [c, a, b]
            }
        }
    }

    public enum Update: Sendable, Equatable {
        case lowRank(a: String, b: String)
        case tensorTrain(cores: [String], rowOrder: DigitOrder, columnOrder: DigitOrder)
        case tuckerSlice(group: String, index: [Int])
        case dense(delta: String)
        case jointTrain(cores: [String], latent: String, rank: Int)
        case convTucker(core: String, a: String, b: String)
        case kronecker(w1: Factor, w2: Factor)
        case hadamard(p1: Factor, p2: Factor)
        case diagonalLowRank(a: String, b: String, e: String)
        case vera(projections: String, lambdaB: String, lambdaD: String)
        case featureScale(vector: String, axis: FeatureAxis)
        /// Only inside a bank member (§2.8): `U = basis.out · core · basis.inᵀ`.
        case bankCore(basis: String, core: String)

        /// Which form this is (the header's `update.type`).
        public var kind: UpdateKind {
            switch self {
            case .lowRank: return .lowRank
            case .tensorTrain: return .tensorTrain
            case .tuckerSlice: return .tuckerSlice
            case .dense: return .dense
            case .jointTrain: return .jointTrain
            case .convTucker: return .convTucker
            case .kronecker: return .kronecker
            case .hadamard: return .hadamard
            case .diagonalLowRank: return .diagonalLowRank
            case .vera: return .vera
            case .featureScale: return .featureScale
            case .bankCore: return .bankCore
            }
        }

        public var tensorNames: [String] {
            switch self {
            case .lowRank(let a, let b): return [a, b]
            case .tensorTrain(let cores, _, _): return cores
            case .tuckerSlice: return []
            case .dense(let d): return [d]
            case .jointTrain(let cores, let latent, _): return cores + [latent]
            case .convTucker(let c, let a, let b): return [c, a, b]
            case .kronecker(let w1, let w2): return w1.tensorNames + w2.tensorNames
            case .hadamard(let p1, let p2): return p1.tensorNames + p2.tensorNames
            case .diagonalLowRank(let a, let b, let e): return [a, b, e]
            case .vera(_, let lb, let ld): return [lb, ld]
            case .featureScale(let v, _): return [v]
            case .bankCore(_, let core): return [core]
            }
        }

        /// What each of this update's tensors is, for messages: `[(name, "B of")]`.
        var roles: [(tensor: String, role: String)] {
            func factor(_ f: Factor, _ side: String) -> [(String, String)] {
                switch f {
                case .full(let m): return [(m, "\(side) of")]
                case .lowRank(let a, let b): return [(a, "\(side)'s A of"), (b, "\(side)'s B of")]
                case .tucker(let c, let a, let b): return [(c, "\(side)'s Tucker core of"), (a, "\(side)'s A of"), (b, "\(side)'s B of")]
                }
            }
            switch self {
            case .lowRank(let a, let b): return [(a, "A of"), (b, "B of")]
            case .tensorTrain(let cores, _, _): return cores.enumerated().map { ($1, "TT core \($0) of") }
            case .jointTrain(let cores, let latent, _): return cores.enumerated().map { ($1, "joint-train core \($0) of") } + [(latent, "joint-train latent of")]
            case .dense(let d): return [(d, "ΔW of")]
            case .tuckerSlice: return []
            case .convTucker(let c, let a, let b): return [(c, "Tucker core of"), (a, "A of"), (b, "B of")]
            case .kronecker(let w1, let w2): return factor(w1, "W1") + factor(w2, "W2")
            case .hadamard(let p1, let p2): return factor(p1, "P1") + factor(p2, "P2")
            case .diagonalLowRank(let a, let b, let e): return [(a, "A of"), (b, "B of"), (e, "diagonal E of")]
            case .vera(_, let lb, let ld): return [(lb, "λ_b of"), (ld, "λ_d of")]
            case .featureScale(let v, _): return [(v, "IA³ vector of")]
            case .bankCore(_, let core): return [(core, "bank core of")]
            }
        }
    }

    public var name: String
    public var target: String
    public var kind: ModuleKind
    public var layout: WeightLayout
    public var outFeatures: Int
    public var inFeatures: Int
    public var scale: Double
    public var update: Update
    public var doraMagnitude: String?
    public var doraAxis: FeatureAxis = .out
    public var doraEpsilon: Double = 0
    public var kernel: [Int] = []
    public var biasDelta: String?
    public var conversion: ConversionRecord?
    public var attributes: [String: String]

    public var tensorNames: [String] { update.tensorNames + (doraMagnitude.map { [$0] } ?? []) + (biasDelta.map { [$0] } ?? []) }
}

/// A pair of shared projections as the header describes it.
public struct ProjectionRecord: Sendable, Equatable {
    public var name: String
    public var a: String
    public var b: String

    public var tensorNames: [String] { [a, b] }
}

/// A Tucker group as the header describes it.
public struct TuckerGroupRecord: Sendable, Equatable {
    public var name: String
    public var core: String
    public var factors: [String]
    public var modes: [TuckerMode]
    public var conversion: ConversionRecord?

    public var tensorNames: [String] { [core] + factors }
}

/// A replaced base tensor as the header describes it.
public struct ReplacedRecord: Sendable, Equatable {
    public var target: String
    public var tensor: String
    public var sourceName: String?
}

/// An adapter bank as the header describes it (docs/FORMAT.md §2.8).
public struct BankRecord: Sendable, Equatable {
    public struct Basis: Sendable, Equatable {
        public var name: String
        public var module: String
        public var cluster: Int
        public var outBasis: String
        public var inBasis: String
        public var conversion: ConversionRecord?
    }

    public struct Member: Sendable, Equatable {
        public var name: String
        public var cluster: Int
        public var metadata: AdapterMetadata
        /// Module entries whose updates are all `bank_core`.
        public var modules: [ModuleRecord]
        public var replaced: [ReplacedRecord]
        public var sourceBytes: Int?

        public var tensorNames: [String] { modules.flatMap(\.tensorNames) + replaced.map(\.tensor) }
    }

    public var bases: [Basis]
    public var members: [Member]
    public var conversion: ConversionRecord?

    public func member(named name: String) -> Member? { members.first { $0.name == name } }
}

/// Everything in a `.tlora` file except the tensor data, validated.
public struct ContainerHeader: Sendable, Equatable {
    public var majorVersion: Int
    public var minorVersion: Int
    public var requiredFeatures: [String]
    public var metadata: AdapterMetadata
    public var tensors: [TensorEntry]
    public var modules: [ModuleRecord]
    public var tuckerGroups: [TuckerGroupRecord]
    public var replaced: [ReplacedRecord]
    public var projections: [ProjectionRecord] = []
    /// The bank, when the file is one (then `modules`, `tuckerGroups` and `replaced` are empty).
    public var bank: BankRecord?
    /// Absolute offset of the data section.
    public var dataStart: Int
    /// Total file length the preamble declares.
    public var fileLength: Int
    /// Length of the header JSON.
    public var headerLength: Int

    /// A tensor's name with what it is, for messages: `m3.b (B of module model.layers.0.q_proj)`.
    public func describe(_ tensor: String) -> String {
        for m in modules {
            if let role = m.update.roles.first(where: { $0.tensor == tensor }) { return "\(tensor) (\(role.role) module \(m.name))" }
            if tensor == m.doraMagnitude { return "\(tensor) (DoRA magnitude of module \(m.name))" }
            if tensor == m.biasDelta { return "\(tensor) (bias change of module \(m.name))" }
        }
        if let bank {
            for b in bank.bases {
                if tensor == b.outBasis { return "\(tensor) (out basis \(b.name) of the bank)" }
                if tensor == b.inBasis { return "\(tensor) (in basis \(b.name) of the bank)" }
            }
            for member in bank.members {
                for m in member.modules {
                    if m.update.tensorNames.contains(tensor) { return "\(tensor) (core of module \(m.name) of bank member \(member.name))" }
                    if tensor == m.doraMagnitude { return "\(tensor) (DoRA magnitude of module \(m.name) of bank member \(member.name))" }
                }
                for r in member.replaced where r.tensor == tensor { return "\(tensor) (replacement for \(r.target) of bank member \(member.name))" }
            }
        }
        for g in tuckerGroups where g.tensorNames.contains(tensor) { return "\(tensor) (of Tucker group \(g.name))" }
        for p in projections where p.tensorNames.contains(tensor) { return "\(tensor) (of projections \(p.name))" }
        for r in replaced where r.tensor == tensor { return "\(tensor) (replacement for \(r.target))" }
        return tensor
    }

    /// The shapes of a module's update, from the tensor entries (no data); a missing tensor has shape `[]`.
    public func updateShape(_ m: ModuleRecord) -> UpdateShape {
        func shape(_ name: String) -> [Int] { entry(name)?.shape ?? [] }
        func factorShape(_ f: ModuleRecord.Factor) -> FactorShape {
            switch f {
            case .full(let m): return .full(shape(m))
            case .lowRank(let a, let b): return .lowRank(a: shape(a), b: shape(b))
            case .tucker(let c, let a, let b): return .tucker(core: shape(c), a: shape(a), b: shape(b))
            }
        }
        switch m.update {
        case .lowRank(let a, let b): return .lowRank(a: shape(a), b: shape(b))
        case .tensorTrain(let cores, _, _): return .tensorTrain(cores: cores.map(shape))
        case .tuckerSlice(let g, let i): return .tuckerSlice(group: g, index: i)
        case .dense(let d): return .dense(shape(d))
        case .jointTrain(let cores, let latent, let rank): return .jointTrain(cores: cores.map(shape), latent: shape(latent), rank: rank)
        case .convTucker(let c, let a, let b): return .convTucker(core: shape(c), a: shape(a), b: shape(b))
        case .kronecker(let w1, let w2): return .kronecker(w1: factorShape(w1), w2: factorShape(w2))
        case .hadamard(let p1, let p2): return .hadamard(p1: factorShape(p1), p2: factorShape(p2))
        case .diagonalLowRank(let a, let b, let e): return .diagonalLowRank(a: shape(a), b: shape(b), e: shape(e))
        case .vera(let p, let lb, let ld): return .vera(projections: p, lambdaB: shape(lb), lambdaD: shape(ld))
        case .featureScale(let v, let axis): return .featureScale(vector: shape(v), axis: axis)
        // A bank core's shape is checked against its bank basis (`AdapterRules.check(bank:)`);
        // `checkSemantics` refuses one anywhere else before asking for this.
        case .bankCore(_, let core): return .dense(shape(core))
        }
    }

    /// The entry for a tensor name.
    public func entry(_ name: String) -> TensorEntry? {
        tensorIndex[name].map { tensors[$0] }
    }

    var tensorIndex: [String: Int] = [:]
}
