import TLoRAIO
import TLoRAModel

/// What `tlora inspect` shows, for any input format.
struct InspectReport {
    struct Module {
        var name: String
        /// An `UpdateKind` raw value (the format's word for the form).
        var update: String
        var shape: [Int]
        /// LoRA rank, TT bond ranks, or the slice's group.
        var ranks: [Int]
        var parameters: Int
        var storedBytes: Int
        var codecs: [String]
        var dtype: String
        var scale: Double
        var dora: Bool
        var maxRelativeError: Double?
        var relativeError: Double?
        var detail: String?
    }

    struct Group {
        var name: String
        var modes: [String]
        var dimensions: [Int]
        var ranks: [Int]
        var members: Int
        var parameters: Int
        var storedBytes: Int
        var codecs: [String]
        var maxRelativeError: Double?
        var relativeError: Double?
    }

    struct Tensor {
        var name: String
        var dtype: String
        var shape: [Int]
        var storedBytes: Int
        var codec: String?
        var location: String?
    }

    /// A base model's parts: a pipeline's component folders, a single file's prefixes.
    struct Component {
        var name: String
        /// `model_index.json`'s class, or what a single file's prefix holds.
        var kind: String
        var files: [String]
        var tensors: Int
        var parameters: Int
        var bytes: Int
        var dtypes: [String]
    }

    var components: [Component] = []
    var path: String
    var format: String
    var version: String?
    var metadata: [(String, String)] = []
    var modules: [Module] = []
    var groups: [Group] = []
    /// Plain tensors: a checkpoint's weights, or an adapter's replaced tensors.
    var tensors: [Tensor] = []
    var fileBytes: Int = 0
    var notes: [String] = []
    /// Members and shared bases, when the file is an adapter bank.
    var bank: BankInfo?

    var totalParameters: Int {
        modules.filter { $0.update != UpdateKind.tuckerSlice.rawValue }.reduce(0) { $0 + $1.parameters } + groups.reduce(0) { $0 + $1.parameters }
            + tensors.reduce(0) { $0 + ($1.shape.reduce(1, *)) }
    }

    var totalStoredBytes: Int {
        modules.reduce(0) { $0 + $1.storedBytes } + groups.reduce(0) { $0 + $1.storedBytes } + tensors.reduce(0) { $0 + $1.storedBytes }
    }

    static func ratio(stored: Int, parameters: Int) -> Double? { Formatting.ratioToF32(stored: stored, parameters: parameters) }
}
