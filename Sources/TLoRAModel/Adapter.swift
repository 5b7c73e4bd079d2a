/// An adapter in memory: metadata plus the updates it makes to a base model's tensors.
///
/// Every update is expressed in one canonical orientation: `ΔW` is `out × in` (the shape of a
/// PyTorch `nn.Linear` weight). Where the base stores the transpose (GPT-2 `Conv1D`, embedding tables),
/// `AdapterModule.layout` says so and the merge transposes; factors are never re-oriented on import.
public struct Adapter: Sendable, Equatable {
    public var metadata: AdapterMetadata
    public var modules: [AdapterModule]
    public var tuckerGroups: [TuckerGroup]
    /// Whole tensors the adapter replaces in the base (PEFT `modules_to_save`, trained biases).
    public var replacedTensors: [ReplacedTensor]
    /// Projections shared by VeRA modules.
    public var projections: [ProjectionPair]

    public init(metadata: AdapterMetadata = AdapterMetadata(), modules: [AdapterModule] = [],
                tuckerGroups: [TuckerGroup] = [], replacedTensors: [ReplacedTensor] = [], projections: [ProjectionPair] = []) {
        self.metadata = metadata
        self.modules = modules
        self.tuckerGroups = tuckerGroups
        self.replacedTensors = replacedTensors
        self.projections = projections
    }

    /// The module with this name.
    public func module(named name: String) -> AdapterModule? { modules.first { $0.name == name } }

    /// The Tucker group with this name.
    public func tuckerGroup(named name: String) -> TuckerGroup? { tuckerGroups.first { $0.name == name } }

    /// The shared projections with this name.
    public func projectionPair(named name: String) -> ProjectionPair? { projections.first { $0.name == name } }
}

/// Where an adapter came from and what it is for. Values are strings so that any tool's metadata
/// survives a round trip; well-known keys have accessors.
public struct AdapterMetadata: Sendable, Equatable {
    /// Ordered key/value pairs (keys unique).
    public private(set) var entries: [(key: String, value: String)] = []

    public init(_ entries: [(String, String)] = []) {
        for (k, v) in entries { self[k] = v }
    }

    public subscript(key: String) -> String? {
        get { entries.first { $0.key == key }?.value }
        set {
            if let i = entries.firstIndex(where: { $0.key == key }) {
                if let newValue { entries[i].value = newValue } else { entries.remove(at: i) }
            } else if let newValue {
                entries.append((key, newValue))
            }
        }
    }

    /// Tool that wrote the source: "peft", "mlx-lm", "llama.cpp", "tlora", …
    public var sourceFormat: String? {
        get { self["source_format"] }
        set { self["source_format"] = newValue }
    }

    /// The base model's name or path as the source recorded it.
    public var baseModel: String? {
        get { self["base_model"] }
        set { self["base_model"] = newValue }
    }

    /// Architecture family ("llama", "gpt2", "bert", …) when known.
    public var architecture: String? {
        get { self["architecture"] }
        set { self["architecture"] = newValue }
    }

    public static func == (a: AdapterMetadata, b: AdapterMetadata) -> Bool {
        a.entries.count == b.entries.count && zip(a.entries, b.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

/// A base tensor replaced wholesale by the adapter.
public struct ReplacedTensor: Sendable, Equatable {
    /// The tensor's name in the base checkpoint, e.g. `lm_head.weight`.
    public var target: String
    public var value: StoredTensor
    /// The tensor's name in the file it came from (e.g. PEFT's `…base_layer.bias`), for a faithful export.
    public var sourceName: String?

    public init(target: String, value: StoredTensor, sourceName: String? = nil) {
        self.target = target
        self.value = value
        self.sourceName = sourceName
    }
}
