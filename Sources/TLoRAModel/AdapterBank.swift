/// Many adapters of one base held together (docs/FORMAT.md §2.8, "Compress then Serve",
/// Brüel-Gabrielsson et al., ICML 2025): for every module and cluster of members, shared bases with
/// orthonormal columns `U` (`out × k_out`) and `V` (`in × k_in`), and for every member a small full
/// core `Σ` (`k_out × k_in`), so that the member's update is `ΔW = scale · U Σ Vᵀ`.
///
/// This is a Tucker decomposition of the members' updates stacked along a member mode that is
/// never truncated: `T = C ×_out U ×_in V`, `C[:, :, i] = Σ_i`.
public struct AdapterBank: Sendable, Equatable {
    /// The bank's own metadata (base model, how it was built); each member keeps its own.
    public var metadata: AdapterMetadata
    public var bases: [BankBasis]
    public var members: [BankMember]
    /// How the bank was built: method, the per-member bound asked for, the worst measured error.
    public var conversion: ConversionRecord?

    public init(metadata: AdapterMetadata = AdapterMetadata(), bases: [BankBasis] = [], members: [BankMember] = [],
                conversion: ConversionRecord? = nil) {
        self.metadata = metadata
        self.bases = bases
        self.members = members
        self.conversion = conversion
    }

    public func member(named name: String) -> BankMember? { members.first { $0.name == name } }
    public func basis(named name: String) -> BankBasis? { bases.first { $0.name == name } }

    /// Clusters in use, ascending.
    public var clusters: [Int] { Array(Set(bases.map(\.cluster))).sorted() }

    /// Parameters held: every basis and every core (DoRA magnitudes and replaced tensors included).
    public var parameterCount: Int {
        bases.reduce(0) { $0 + $1.outBasis.elementCount + $1.inBasis.elementCount } + members.reduce(0) { $0 + $1.parameterCount }
    }
}

/// The shared bases of one module within one cluster of members.
public struct BankBasis: Sendable, Equatable {
    /// Unique within the bank; members' cores refer to it.
    public var name: String
    /// The module (layer path) whose updates these bases hold.
    public var module: String
    /// The cluster of members that shares them.
    public var cluster: Int
    /// `U`, `out × k_out`, orthonormal columns.
    public var outBasis: StoredTensor
    /// `V`, `in × k_in`, orthonormal columns.
    public var inBasis: StoredTensor
    /// The construction's record for this module and cluster (bound, worst member error).
    public var conversion: ConversionRecord?

    public init(name: String, module: String, cluster: Int, outBasis: StoredTensor, inBasis: StoredTensor, conversion: ConversionRecord? = nil) {
        self.name = name
        self.module = module
        self.cluster = cluster
        self.outBasis = outBasis
        self.inBasis = inBasis
        self.conversion = conversion
    }

    /// `(k_out, k_in)`.
    public var ranks: (out: Int, in: Int) { (outBasis.shape.last ?? 0, inBasis.shape.last ?? 0) }
}

/// One adapter of the bank: its name, metadata and modules, each a core in a basis.
public struct BankMember: Sendable, Equatable {
    public var name: String
    public var cluster: Int
    public var metadata: AdapterMetadata
    public var modules: [BankModule]
    /// Whole base tensors the member replaces (PEFT `modules_to_save`), kept as they were.
    public var replacedTensors: [ReplacedTensor]
    /// Bytes of the member's tensors before it joined the bank, for size comparisons.
    public var sourceBytes: Int?

    public init(name: String, cluster: Int = 0, metadata: AdapterMetadata = AdapterMetadata(), modules: [BankModule] = [],
                replacedTensors: [ReplacedTensor] = [], sourceBytes: Int? = nil) {
        self.name = name
        self.cluster = cluster
        self.metadata = metadata
        self.modules = modules
        self.replacedTensors = replacedTensors
        self.sourceBytes = sourceBytes
    }

    public func module(named name: String) -> BankModule? { modules.first { $0.name == name } }

    public var parameterCount: Int {
        modules.reduce(0) { $0 + $1.core.elementCount + ($1.doraMagnitude?.elementCount ?? 0) }
            + replacedTensors.reduce(0) { $0 + $1.value.elementCount }
    }
}

/// A member's module: everything an `AdapterModule` says except that its update is a core in a
/// shared basis, `ΔW = scale · U · core · Vᵀ`.
public struct BankModule: Sendable, Equatable {
    public var name: String
    public var target: String
    public var kind: ModuleKind
    public var layout: WeightLayout
    public var outFeatures: Int
    public var inFeatures: Int
    public var scale: Double
    /// The `BankBasis` holding `U` and `V`.
    public var basis: String
    /// `Σ`, `k_out × k_in`.
    public var core: StoredTensor
    public var doraMagnitude: StoredTensor?
    /// The per-member bound and the error measured against the member's own update.
    public var conversion: ConversionRecord?
    public var attributes: [String: String]

    public init(name: String, target: String? = nil, kind: ModuleKind = .linear, layout: WeightLayout = .outIn,
                outFeatures: Int, inFeatures: Int, scale: Double, basis: String, core: StoredTensor,
                doraMagnitude: StoredTensor? = nil, conversion: ConversionRecord? = nil, attributes: [String: String] = [:]) {
        self.name = name
        self.target = target ?? name + ".weight"
        self.kind = kind
        self.layout = layout
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.scale = scale
        self.basis = basis
        self.core = core
        self.doraMagnitude = doraMagnitude
        self.conversion = conversion
        self.attributes = attributes
    }

    /// A module of `source`'s layer, shape, scale and attributes, with its update held by `core`.
    public init(_ source: AdapterModule, basis: String, core: StoredTensor, conversion: ConversionRecord?) {
        self.init(name: source.name, target: source.target, kind: source.kind, layout: source.layout,
                  outFeatures: source.outFeatures, inFeatures: source.inFeatures, scale: source.scale, basis: basis, core: core,
                  doraMagnitude: source.doraMagnitude, conversion: conversion, attributes: source.attributes)
    }

    /// This module as an ordinary adapter module with `update`.
    public func module(update: ModuleUpdate) -> AdapterModule {
        AdapterModule(name: name, target: target, kind: kind, layout: layout, outFeatures: outFeatures, inFeatures: inFeatures,
                      scale: scale, update: update, doraMagnitude: doraMagnitude, conversion: conversion, attributes: attributes)
    }
}
