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
    public enum Update: Sendable, Equatable {
        case lowRank(a: String, b: String)
        case tensorTrain(cores: [String], rowOrder: DigitOrder, columnOrder: DigitOrder)
        case tuckerSlice(group: String, index: [Int])
        case dense(delta: String)
        case jointTrain(cores: [String], latent: String, rank: Int)

        /// Which form this is (the header's `update.type`).
        public var kind: UpdateKind {
            switch self {
            case .lowRank: return .lowRank
            case .tensorTrain: return .tensorTrain
            case .tuckerSlice: return .tuckerSlice
            case .dense: return .dense
            case .jointTrain: return .jointTrain
            }
        }

        public var tensorNames: [String] {
            switch self {
            case .lowRank(let a, let b): return [a, b]
            case .tensorTrain(let cores, _, _): return cores
            case .tuckerSlice: return []
            case .dense(let d): return [d]
            case .jointTrain(let cores, let latent, _): return cores + [latent]
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
    public var conversion: ConversionRecord?
    public var attributes: [String: String]

    public var tensorNames: [String] { update.tensorNames + (doraMagnitude.map { [$0] } ?? []) }
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
    /// Absolute offset of the data section.
    public var dataStart: Int
    /// Total file length the preamble declares.
    public var fileLength: Int
    /// Length of the header JSON.
    public var headerLength: Int

    /// A tensor's name with what it is, for messages: `m3.b (B of module model.layers.0.q_proj)`.
    public func describe(_ tensor: String) -> String {
        for m in modules {
            switch m.update {
            case .lowRank(let a, let b):
                if tensor == a { return "\(tensor) (A of module \(m.name))" }
                if tensor == b { return "\(tensor) (B of module \(m.name))" }
            case .tensorTrain(let cores, _, _):
                if let k = cores.firstIndex(of: tensor) { return "\(tensor) (TT core \(k) of module \(m.name))" }
            case .jointTrain(let cores, let latent, _):
                if let k = cores.firstIndex(of: tensor) { return "\(tensor) (joint-train core \(k) of module \(m.name))" }
                if tensor == latent { return "\(tensor) (joint-train latent of module \(m.name))" }
            case .dense(let d):
                if tensor == d { return "\(tensor) (ΔW of module \(m.name))" }
            case .tuckerSlice: break
            }
            if tensor == m.doraMagnitude { return "\(tensor) (DoRA magnitude of module \(m.name))" }
        }
        for g in tuckerGroups where g.tensorNames.contains(tensor) { return "\(tensor) (of Tucker group \(g.name))" }
        for r in replaced where r.tensor == tensor { return "\(tensor) (replacement for \(r.target))" }
        return tensor
    }

    /// The entry for a tensor name.
    public func entry(_ name: String) -> TensorEntry? {
        tensorIndex[name].map { tensors[$0] }
    }

    var tensorIndex: [String: Int] = [:]
}
