/// What a bank build did, per module and cluster and per member, for the command's report.
public struct BankSummary: Sendable {
    /// One module's bases within one cluster.
    public struct Piece: Sendable {
        public var module: String
        public var cluster: Int
        public var members: Int
        /// `[k_out, k_in]`.
        public var ranks: [Int]
        /// Parameters of the members' own updates of this module.
        public var sourceParameters: Int
        /// Parameters of the bases and the members' cores.
        public var parameters: Int
        public var bound: Double?
        /// The largest measured relative error of a member on this module.
        public var worstError: Double
        /// Seconds per step: factors (QRs), out basis, in basis, ranks, cores, errors; then the
        /// bases' own steps ("out gram", "out eigen", "out energies", … or "out svd").
        public var timings: [StepTiming] = []
    }

    public struct Member: Sendable {
        public var name: String
        public var cluster: Int
        public var modules: Int
        public var sourceParameters: Int
        /// The largest relative error over the member's modules.
        public var worstError: Double
        /// ‖ΔW − ΔŴ‖ / ‖ΔW‖ over all the member's modules together.
        public var overallError: Double
    }

    /// A clustering that was compared: how many clusters, parameters, worst error.
    public struct ClusterTrial: Sendable {
        public var clusters: Int
        public var parameters: Int
        public var worstError: Double
    }

    public var pieces: [Piece]
    public var members: [Member]
    public var clusterTrials: [ClusterTrial] = []
    public var notes: [String] = []

    public var parameters: Int { pieces.reduce(0) { $0 + $1.parameters } }
    public var sourceParameters: Int { members.reduce(0) { $0 + $1.sourceParameters } }
    public var worstError: Double { members.map(\.worstError).max() ?? 0 }
}
