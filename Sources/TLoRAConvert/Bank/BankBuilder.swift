import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// `tlora bank build`: many adapters of one base as one bank — per module (and cluster of members)
/// shared orthonormal bases `U`, `V` and a small full core per member, `ΔW_i ≈ s_i · U Σ_i Vᵀ`
/// ("Compress then Serve", Brüel-Gabrielsson et al., ICML 2025), built from the members' factors.
///
/// With `maxRelativeError` E, **every member's** error on **every module** is at most E
/// (docs/NUMERICS.md, "Adapter banks"): the bases are complete for the members' column and row
/// spaces, each member's energy outside every prefix of them is known exactly, and the ranks are
/// the smallest-size pair that keeps each member's two tails within its own budget.
public enum BankBuilder {
    /// One adapter joining the bank.
    public struct Source: Sendable {
        public var name: String
        public var adapter: Adapter
        /// Bytes of the adapter's tensors as its source stored them (for the size report).
        public var sourceBytes: Int?

        public init(name: String, adapter: Adapter, sourceBytes: Int? = nil) {
            self.name = name
            self.adapter = adapter
            self.sourceBytes = sourceBytes
        }
    }

    public struct Options: Sendable {
        /// Bound on every member's relative error on every module; 0 = lossless.
        public var maxRelativeError: Double?
        /// A fixed shared rank (`k_out = k_in = R`, or less where the members span less) instead of a bound.
        public var rank: Int?
        /// Clusters of members, each with its own bases; kept only when smaller at the same bound.
        public var clusters: Int
        /// Storage dtype of bases and cores.
        public var dtype: DType
        /// Called with (modules done, modules to do) as the pieces (module × cluster) finish; a
        /// clustered build counts the one-cluster build, the clustering and the clustered build.
        public var progress: (@Sendable (Int, Int) -> Void)?

        public init(maxRelativeError: Double? = 0, rank: Int? = nil, clusters: Int = 1, dtype: DType = .f32,
                    progress: (@Sendable (Int, Int) -> Void)? = nil) {
            self.maxRelativeError = maxRelativeError
            self.rank = rank
            self.clusters = clusters
            self.dtype = dtype
            self.progress = progress
        }
    }

    public static func build(_ sources: [Source], options: Options) throws -> (AdapterBank, BankSummary) {
        guard !sources.isEmpty else { throw ConvertError(.invalidOptions, "a bank needs at least one member") }
        if let e = options.maxRelativeError, !(e >= 0 && e < 1) { throw ConvertError(.invalidOptions, "the error bound must be in [0, 1), got \(e)") }
        if let r = options.rank, r < 1 { throw ConvertError(.invalidOptions, "the shared rank must be at least 1, got \(r)") }
        guard options.clusters >= 1 else { throw ConvertError(.invalidOptions, "--clusters must be at least 1") }
        let slots = try plan(sources)
        let single = [Int](repeating: 0, count: sources.count)
        let clustering = options.clusters > 1 && sources.count > 1
        let counter = ProgressCounter(total: slots.count * (clustering ? 3 : 1), report: options.progress)
        var pieces = try buildPieces(slots, sources: sources, assignment: single, options: options, counter: counter)
        var trials: [BankSummary.ClusterTrial] = []
        var notes: [String] = []
        if clustering {
            let k = min(options.clusters, sources.count)
            let assignment = try BankClustering.assign(slots: slots, sources: sources, clusters: k, reference: pieces, options: options)
            counter.advance(by: slots.count)
            let used = Set(assignment).count
            let clustered = try buildPieces(slots, sources: sources, assignment: assignment, options: options, counter: counter)
            let one = pieces.reduce(0) { $0 + $1.parameters }, many = clustered.reduce(0) { $0 + $1.parameters }
            trials = [BankSummary.ClusterTrial(clusters: 1, parameters: one, worstError: pieces.map(\.worstError).max() ?? 0),
                      BankSummary.ClusterTrial(clusters: used, parameters: many, worstError: clustered.map(\.worstError).max() ?? 0)]
            // At a bound both meet it: keep the smaller. At a fixed rank the user asked for clusters.
            if options.rank != nil || many < one {
                pieces = clustered
                notes.append("\(used) clusters: \(many) parameters against \(one) with one; kept \(used)")
            } else {
                notes.append("\(used) clusters would hold \(many) parameters against \(one) with one cluster; kept one")
            }
            if used < k { notes.append("asked for \(k) clusters; \(k - used) ended up empty") }
        }
        return assemble(pieces, slots: slots, sources: sources, options: options, trials: trials, notes: notes)
    }

    // MARK: - Planning

    /// One module (layer path) across the members that have it.
    struct Slot {
        var name: String
        var outFeatures: Int
        var inFeatures: Int
        /// (member index, the member's module), in member order.
        var entries: [(member: Int, module: AdapterModule)]
    }

    static func plan(_ sources: [Source]) throws -> [Slot] {
        var seen = Set<String>()
        for s in sources {
            guard !s.name.isEmpty else { throw ConvertError(.invalidOptions, "a bank member needs a non-empty name") }
            guard seen.insert(s.name).inserted else { throw ConvertError(.conflictingUpdates, "two members are named \(s.name); name them with NAME=PATH") }
        }
        var slots: [Slot] = []
        var index: [String: Int] = [:]
        for (j, s) in sources.enumerated() {
            for m in s.adapter.modules {
                try checkBankable(m, member: s.name)
                if let i = index[m.name] {
                    let first = slots[i]
                    guard first.outFeatures == m.outFeatures, first.inFeatures == m.inFeatures else {
                        let other = sources[first.entries[0].member].name
                        throw ConvertError(.shapeMismatch, "module \(m.name) is \(m.outFeatures)×\(m.inFeatures) in \(s.name) but \(first.outFeatures)×\(first.inFeatures) in \(other): members of a bank share one base")
                    }
                    slots[i].entries.append((j, m))
                } else {
                    index[m.name] = slots.count
                    slots.append(Slot(name: m.name, outFeatures: m.outFeatures, inFeatures: m.inFeatures, entries: [(j, m)]))
                }
            }
        }
        guard !slots.isEmpty else { throw ConvertError(.invalidOptions, "the members have no modules to bank") }
        return slots
    }

    /// A bank holds a member module's `ΔW`, scale, layout, out-axis DoRA magnitude and attributes;
    /// what else a module may carry (a convolution's kernel, a bias change, DoRA on the input axis
    /// or with an epsilon) has no place in a bank member (docs/FORMAT.md §2.8), so it is refused
    /// rather than dropped.
    static func checkBankable(_ m: AdapterModule, member: String) throws {
        var what: [String] = []
        if !m.kernel.isEmpty { what.append("adapts a convolution") }
        if m.biasDelta != nil { what.append("changes a bias") }
        if m.doraMagnitude != nil, m.doraAxis != .out || m.doraEpsilon != 0 { what.append("has DoRA on the input axis or with an epsilon") }
        guard what.isEmpty else {
            throw ConvertError(.notSupported, "\(member): module \(m.name) \(what.joined(separator: " and ")), which a bank member cannot hold (banks hold linear layers' updates, with DoRA on the output axis)")
        }
    }

    // MARK: - Pieces (one module × one cluster)

    struct Piece {
        var slot: Int
        var cluster: Int
        var outBasis: StoredTensor
        var inBasis: StoredTensor
        /// Per member of the piece: index, core, measured relative error, ‖ΔW‖².
        var cores: [(member: Int, core: StoredTensor, error: Double, norm2: Double)]
        var sourceParameters: Int
        var bound: Double?
        /// Seconds per step (for `tlora-bench bank` and the scale notes).
        var timings: [StepTiming] = []
        var ranks: (out: Int, in: Int) { (outBasis.shape[1], inBasis.shape[1]) }
        var parameters: Int { outBasis.elementCount + inBasis.elementCount + cores.reduce(0) { $0 + $1.core.elementCount } }
        var worstError: Double { cores.map(\.error).max() ?? 0 }
    }

    static func buildPieces(_ slots: [Slot], sources: [Source], assignment: [Int], options: Options, counter: ProgressCounter? = nil) throws -> [Piece] {
        var work: [(slot: Int, cluster: Int, entries: [(member: Int, module: AdapterModule)])] = []
        for (i, slot) in slots.enumerated() {
            for c in Array(Set(slot.entries.map { assignment[$0.member] })).sorted() {
                work.append((i, c, slot.entries.filter { assignment[$0.member] == c }))
            }
        }
        return try Parallel.map(count: work.count) { w in
            let item = work[w]
            var clock = StepClock()
            let factors = try item.entries.map { try MemberFactors($0.module, in: sources[$0.member].adapter) }
            clock.mark("factors")
            let source = item.entries.reduce(0) { $0 + sources[$1.member].adapter.parameterCount(of: $1.module) }
            var built = try piece(slot: slots[item.slot], cluster: item.cluster, members: item.entries.map(\.member), factors: factors,
                                  sourceParameters: source, options: options)
            built.slot = item.slot
            built.timings.insert(contentsOf: clock.steps, at: 0)
            // A module counts as done with its last cluster.
            if item.cluster == work.last(where: { $0.slot == item.slot })?.cluster { counter?.advance() }
            return built
        }
    }

    /// Builds one module's bases and cores for the given members.
    static func piece(slot: Slot, cluster: Int, members: [Int], factors: [MemberFactors], sourceParameters: Int, options: Options) throws -> Piece {
        var clock = StepClock()
        var nested: [StepTiming] = []
        func mark(_ step: String) { clock.mark(step) }
        let outSide = ModeBasis(dimension: slot.outFeatures, widths: factors.map(\.triangleA.rows)) { factors[$0].outBlock }
        mark("out basis")
        nested += outSide.timings.map { StepTiming(step: "out " + $0.step, wall: $0.wall, cpu: $0.cpu) }
        let inSide = ModeBasis(dimension: slot.inFeatures, widths: factors.map(\.triangleB.rows)) { factors[$0].inBlock }
        mark("in basis")
        nested += inSide.timings.map { StepTiming(step: "in " + $0.step, wall: $0.wall, cpu: $0.cpu) }
        let ranks: (out: Int, in: Int)
        if let r = options.rank {
            ranks = (min(r, outSide.count), min(r, inSide.count))
        } else {
            let b = budget(options.maxRelativeError ?? 0, dtype: options.dtype, outRank: outSide.count, inRank: inSide.count)
            ranks = BankRanks.choose(outSide: outSide, inSide: inSide, budgets: [Double](repeating: b, count: factors.count),
                                     outFeatures: slot.outFeatures, inFeatures: slot.inFeatures)
        }
        mark("ranks")
        // Round the bases to the storage dtype first: the cores are the projections on the stored
        // bases, and the errors are measured on what is stored.
        let outStored = StoredTensor(outSide.basis.columns(0..<ranks.out), dtype: options.dtype)
        let inStored = StoredTensor(inSide.basis.columns(0..<ranks.in), dtype: options.dtype)
        let u = outStored.matrix(), v = inStored.matrix()
        let stored = factors.map { StoredTensor($0.core(outBasis: u, inBasis: v), dtype: options.dtype) }
        mark("cores")
        var cores: [(Int, StoredTensor, Double, Double)] = []
        for (j, (f, core)) in zip(members, zip(factors, stored)) {
            let error = f.relativeError(outBasis: u, core: core.matrix(), inBasis: v)
            try DenseToTT.checkBound(error, e: options.rank == nil ? options.maxRelativeError : nil, module: slot.name, dtype: options.dtype)
            cores.append((j, core, error, f.norm * f.norm))
        }
        mark("errors")
        return Piece(slot: 0, cluster: cluster, outBasis: outStored, inBasis: inStored, cores: cores,
                     sourceParameters: sourceParameters, bound: options.rank == nil ? options.maxRelativeError : nil,
                     timings: clock.steps + nested)
    }

    /// Each member's budget on its normalized energy outside the kept columns (the sum of its two
    /// tails): `E'² + s²`, where `s` covers the f64 arithmetic and `E' = E − δ − s` leaves room `δ`
    /// for rounding bases and cores to `dtype` (each factor's rounding is at most `u·√k` in the
    /// 2-norm, `u` the unit roundoff; docs/NUMERICS.md).
    static func budget(_ e: Double, dtype: DType, outRank: Int, inRank: Int) -> Double {
        func allowance(_ u: Double) -> Double { 2 * (Double(outRank).squareRoot() + Double(inRank).squareRoot() + 1) * u }
        let s = allowance(0x1p-53)
        let effective = max(0, e - allowance(unitRoundoff(dtype)) - s)
        return effective * effective + s * s
    }

    static func unitRoundoff(_ dtype: DType) -> Double {
        switch dtype {
        case .f64: return 0x1p-53
        case .f32: return 0x1p-24
        case .f16: return 0x1p-11
        case .bf16: return 0x1p-8
        }
    }

    // MARK: - Assembly

    static func basisName(_ module: String, cluster: Int, clustered: Bool) -> String {
        clustered ? "\(module)@\(cluster)" : module
    }

    static func assemble(_ pieces: [Piece], slots: [Slot], sources: [Source], options: Options,
                         trials: [BankSummary.ClusterTrial], notes: [String]) -> (AdapterBank, BankSummary) {
        let bySlot = pieces.map { ($0.slot, $0) }
        let clustered = Set(pieces.map(\.cluster)).count > 1
        var bases: [BankBasis] = []
        var memberModules = [[String: BankModule]](repeating: [:], count: sources.count)
        var memberCluster = [Int](repeating: 0, count: sources.count)
        var summaryPieces: [BankSummary.Piece] = []
        var memberErrors = [[(error: Double, norm2: Double)]](repeating: [], count: sources.count)
        for (i, piece) in bySlot {
            let slot = slots[i]
            let name = basisName(slot.name, cluster: piece.cluster, clustered: clustered)
            let record = ConversionRecord(method: "bank", maxRelativeError: piece.bound, relativeError: piece.worstError,
                                          sourceParameters: piece.sourceParameters, note: "\(piece.cores.count) members; the bound holds for each")
            bases.append(BankBasis(name: name, module: slot.name, cluster: piece.cluster, outBasis: piece.outBasis, inBasis: piece.inBasis, conversion: record))
            for c in piece.cores {
                // Safe: every core's member has this module (the piece was built from the slot's entries).
                let source = slot.entries.first { $0.member == c.member }!.module
                let conversion = ConversionRecord(method: "bank", maxRelativeError: piece.bound, relativeError: c.error,
                                                  sourceParameters: sources[c.member].adapter.parameterCount(of: source))
                memberModules[c.member][slot.name] = BankModule(source, basis: name, core: c.core, conversion: conversion)
                memberCluster[c.member] = piece.cluster
                memberErrors[c.member].append((c.error, c.norm2))
            }
            summaryPieces.append(BankSummary.Piece(module: slot.name, cluster: piece.cluster, members: piece.cores.count,
                                                   ranks: [piece.ranks.out, piece.ranks.in], sourceParameters: piece.sourceParameters,
                                                   parameters: piece.parameters, bound: piece.bound, worstError: piece.worstError,
                                                   timings: piece.timings))
        }
        var members: [BankMember] = []
        var summaryMembers: [BankSummary.Member] = []
        for (j, s) in sources.enumerated() {
            // Safe: `plan` put every module of every member into a slot, and each slot into pieces.
            let modules = s.adapter.modules.map { memberModules[j][$0.name]! }
            members.append(BankMember(name: s.name, cluster: memberCluster[j], metadata: s.adapter.metadata, modules: modules,
                                      replacedTensors: s.adapter.replacedTensors, sourceBytes: s.sourceBytes))
            let d2 = memberErrors[j].reduce(0) { $0 + $1.error * $1.error * $1.norm2 }, n2 = memberErrors[j].reduce(0) { $0 + $1.norm2 }
            summaryMembers.append(BankSummary.Member(
                name: s.name, cluster: memberCluster[j], modules: modules.count,
                sourceParameters: s.adapter.modules.reduce(0) { $0 + s.adapter.parameterCount(of: $1) },
                worstError: memberErrors[j].map(\.error).max() ?? 0, overallError: n2 > 0 ? (d2 / n2).squareRoot() : 0))
        }
        var metadata = AdapterMetadata()
        for key in ["base_model", "architecture"] {
            let values = Set(sources.compactMap { $0.adapter.metadata[key] })
            if values.count == 1 { metadata[key] = values.first }
        }
        metadata["source_format"] = "tlora-bank"
        let worst = summaryPieces.map(\.worstError).max() ?? 0
        let bound = options.rank == nil ? options.maxRelativeError : nil
        let conversion = ConversionRecord(method: "bank", maxRelativeError: bound, relativeError: worst,
                                          sourceParameters: summaryMembers.reduce(0) { $0 + $1.sourceParameters },
                                          note: options.rank.map { "shared rank \($0)" } ?? "the bound holds for every member on every module")
        let bank = AdapterBank(metadata: metadata, bases: bases, members: members, conversion: conversion)
        return (bank, BankSummary(pieces: summaryPieces, members: summaryMembers, clusterTrials: trials, notes: notes))
    }
}
