import TLoRAModel

/// What a conversion did to each module or group, for the command's report and the file's records.
public struct ConversionSummary: Sendable {
    public struct Line: Sendable {
        /// Module or group name.
        public var name: String
        /// "tensor_train", "tucker", "low_rank", or the source form kept as it was.
        public var form: String
        /// Ranks of the result (TT bonds, Tucker core, LoRA rank).
        public var ranks: [Int]
        public var sourceParameters: Int
        public var parameters: Int
        /// The requested bound on the relative Frobenius error, if any.
        public var bound: Double?
        /// The measured relative Frobenius error.
        public var relativeError: Double
        /// How it was computed ("from factors", "dense fallback: …").
        public var note: String?
        /// Modules a group holds (empty for a module line).
        public var members: [String] = []

        public init(name: String, form: String, ranks: [Int], sourceParameters: Int, parameters: Int, bound: Double?,
                    relativeError: Double, note: String?, members: [String] = []) {
            self.name = name
            self.form = form
            self.ranks = ranks
            self.sourceParameters = sourceParameters
            self.parameters = parameters
            self.bound = bound
            self.relativeError = relativeError
            self.note = note
            self.members = members
        }
    }

    public var lines: [Line] = []
    /// Modules left as they were, with why.
    public var unchanged: [(name: String, reason: String)] = []
    /// Remarks on converted modules or groups (e.g. projections not stacked together, and why).
    public var notes: [(name: String, reason: String)] = []

    public init(lines: [Line] = []) { self.lines = lines }

    /// Parameters of source tensors no line counts: Tucker groups the conversion replaced (their
    /// slices count none each, since they share the group's core and factors).
    public var sharedSourceParameters = 0

    public var sourceParameters: Int { lines.reduce(sharedSourceParameters) { $0 + $1.sourceParameters } }
    public var parameters: Int { lines.reduce(0) { $0 + $1.parameters } }
    public var worstError: Double { lines.map(\.relativeError).max() ?? 0 }
}

/// The error bound and rank limit a conversion works to.
public struct ConversionTarget: Sendable, Equatable {
    /// Bound on ‖ΔW − ΔŴ‖_F / ‖ΔW‖_F; 0 = lossless; nil = governed by `maxRank` alone.
    public var maxRelativeError: Double?
    public var maxRank: Int

    public init(maxRelativeError: Double? = nil, maxRank: Int = Int.max) {
        self.maxRelativeError = maxRelativeError
        self.maxRank = maxRank
    }

    /// Lossless: keep every nonzero direction.
    public static let lossless = ConversionTarget(maxRelativeError: 0)
}

extension ConversionSummary {
    /// The parameters of `source`'s Tucker groups that `result` no longer holds.
    static func replacedGroupParameters(source: Adapter, result: Adapter) -> Int {
        let kept = Set(result.tuckerGroups.map(\.name)), keptPairs = Set(result.projections.map(\.name))
        return source.tuckerGroups.filter { !kept.contains($0.name) }.reduce(0) { $0 + $1.parameterCount }
            + source.projections.filter { !keptPairs.contains($0.name) }.reduce(0) { $0 + $1.a.elementCount + $1.b.elementCount }
    }
}

extension Adapter {
    /// Parameters of one module's own tensors (a Tucker slice counts none: its group does).
    func parameterCount(of m: AdapterModule) -> Int {
        m.update.tensors.reduce(0) { $0 + $1.elementCount }
    }
}
