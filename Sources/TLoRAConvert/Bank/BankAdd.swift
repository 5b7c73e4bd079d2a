import TLoRAModel
import TLoRANumerics

/// `tlora bank add`: a new member projected onto a bank's existing bases (`Σ = Uᵀ X V`, the best
/// core in those bases), with its error measured per module. A member that the bases hold within
/// the bound joins as it is; one that they do not is refused — or, with `rebuild`, the bases of the
/// modules that fall short are extended by the directions the new member needs (the fewest that
/// meet its bound, chosen as in `bank build`). Extension keeps every existing column bit for bit and
/// pads the existing cores with zeros, so **no existing member changes at all**.
public enum BankAdd {
    public struct Options: Sendable {
        /// The bound for the new member; nil = the bank's own.
        public var maxRelativeError: Double?
        /// Extend the bases when the projection misses the bound, instead of refusing.
        public var rebuild: Bool

        public init(maxRelativeError: Double? = nil, rebuild: Bool = false) {
            self.maxRelativeError = maxRelativeError
            self.rebuild = rebuild
        }
    }

    public struct Report: Sendable {
        public struct Line: Sendable {
            public var module: String
            /// The error of the projection onto the existing bases (1 where the cluster had none).
            public var projectedError: Double
            /// The error as stored (after any extension).
            public var error: Double
            /// `[k_out, k_in]` before and after, when the bases were extended or created.
            public var ranksBefore: [Int]?
            public var ranksAfter: [Int]
        }

        public var member: String
        public var cluster: Int
        public var bound: Double?
        public var lines: [Line]
        public var extended: Bool { lines.contains { $0.ranksBefore != $0.ranksAfter } }
        public var worstError: Double { lines.map(\.error).max() ?? 0 }
        public var worstProjectedError: Double { lines.map(\.projectedError).max() ?? 0 }
    }

    public static func add(_ source: BankBuilder.Source, to bank: AdapterBank, options: Options) throws -> (AdapterBank, Report) {
        guard !source.name.isEmpty else { throw ConvertError(.invalidOptions, "a bank member needs a non-empty name") }
        guard bank.member(named: source.name) == nil else {
            throw ConvertError(.conflictingUpdates, "the bank already has a member named \(source.name); name the new one with NAME=PATH")
        }
        guard !source.adapter.modules.isEmpty else { throw ConvertError(.invalidOptions, "\(source.name) has no modules to add") }
        for m in source.adapter.modules { try BankBuilder.checkBankable(m, member: source.name) }
        let bound = options.maxRelativeError ?? bank.conversion?.maxRelativeError
        if let e = bound, !(e >= 0 && e < 1) { throw ConvertError(.invalidOptions, "the error bound must be in [0, 1), got \(e)") }
        let factors = try source.adapter.modules.map { try MemberFactors($0, in: source.adapter) }
        let clusters = bank.clusters.isEmpty ? [0] : bank.clusters

        // Project onto every cluster's bases; keep the cluster whose worst module error is lowest.
        var best: (cluster: Int, errors: [Double], cores: [Matrix<Double>?])? = nil
        for c in clusters {
            var errors: [Double] = [], cores: [Matrix<Double>?] = []
            for (m, f) in zip(source.adapter.modules, factors) {
                guard let basis = bank.bases.first(where: { $0.module == m.name && $0.cluster == c }) else {
                    errors.append(f.norm > 0 ? 1 : 0)
                    cores.append(nil)
                    continue
                }
                guard basis.outBasis.shape[0] == m.outFeatures, basis.inBasis.shape[0] == m.inFeatures else {
                    throw ConvertError(.shapeMismatch, "module \(m.name) is \(m.outFeatures)×\(m.inFeatures) in \(source.name) but the bank holds \(basis.outBasis.shape[0])×\(basis.inBasis.shape[0]): members of a bank share one base")
                }
                let u = basis.outBasis.matrix(), v = basis.inBasis.matrix()
                let core = StoredTensor(f.core(outBasis: u, inBasis: v), dtype: basis.outBasis.dtype).matrix()
                errors.append(f.relativeError(outBasis: u, core: core, inBasis: v))
                cores.append(core)
            }
            if best == nil || errors.max() ?? 0 < best!.errors.max() ?? 0 { best = (c, errors, cores) }  // safe: checked for nil first
        }
        // Safe: `clusters` is never empty.
        let chosen = best!
        let fits = bound.map { e in zip(chosen.errors, chosen.cores).allSatisfy { $0.1 != nil && $0.0 <= e } } ?? chosen.cores.allSatisfy { $0 != nil }
        if !fits && !options.rebuild {
            let (i, e) = chosen.errors.enumerated().max { $0.element < $1.element }!  // safe: modules are not empty
            let module = source.adapter.modules[i].name
            if chosen.cores[i] == nil {
                throw ConvertError(.missingPart, "\(source.name): the bank has no bases for module \(module); add it with --rebuild to create them")
            }
            throw ConvertError(.errorBoundExceeded, "\(source.name): projected onto the bank's bases, module \(module) has relative error \(format(e)) > \(format(bound ?? 0)); add it with --rebuild to extend the bases, or raise --max-rel-error")
        }

        var out = bank
        var modules: [BankModule] = []
        var lines: [Report.Line] = []
        for (i, (m, f)) in zip(source.adapter.modules, factors).enumerated() {
            let existing = out.bases.firstIndex { $0.module == m.name && $0.cluster == chosen.cluster }
            let dtype = existing.map { out.bases[$0].outBasis.dtype } ?? bank.bases.first?.outBasis.dtype ?? .f32
            var basisName: String
            var before: [Int]? = nil
            if let b = existing {
                basisName = out.bases[b].name
                before = [out.bases[b].ranks.out, out.bases[b].ranks.in]
                if let e = bound, chosen.errors[i] > e {
                    try extend(&out, basis: b, with: f, bound: e, module: m)
                }
            } else {
                basisName = BankBuilder.basisName(m.name, cluster: chosen.cluster, clustered: true)
                while out.basis(named: basisName) != nil { basisName += "'" }
                let outSide = ModeBasis(dimension: m.outFeatures, widths: [f.triangleA.rows]) { _ in f.outBlock }
                let inSide = ModeBasis(dimension: m.inFeatures, widths: [f.triangleB.rows]) { _ in f.inBlock }
                let ranks = BankRanks.choose(outSide: outSide, inSide: inSide,
                                             budgets: [BankBuilder.budget(bound ?? 0, dtype: dtype, outRank: outSide.count, inRank: inSide.count)],
                                             outFeatures: m.outFeatures, inFeatures: m.inFeatures)
                out.bases.append(BankBasis(name: basisName, module: m.name, cluster: chosen.cluster,
                                           outBasis: StoredTensor(outSide.basis.columns(0..<ranks.out), dtype: dtype),
                                           inBasis: StoredTensor(inSide.basis.columns(0..<ranks.in), dtype: dtype)))
            }
            // Safe: the basis exists now (found, extended or created above).
            let b = out.bases.firstIndex { $0.name == basisName }!
            let u = out.bases[b].outBasis.matrix(), v = out.bases[b].inBasis.matrix()
            let core = StoredTensor(f.core(outBasis: u, inBasis: v), dtype: dtype)
            let error = f.relativeError(outBasis: u, core: core.matrix(), inBasis: v)
            try DenseToTT.checkBound(error, e: bound, module: m.name, dtype: dtype)
            let record = ConversionRecord(method: "bank-add", maxRelativeError: bound, relativeError: error,
                                          sourceParameters: source.adapter.parameterCount(of: m))
            modules.append(BankModule(m, basis: basisName, core: core, conversion: record))
            var basisRecord = out.bases[b].conversion ?? ConversionRecord(method: "bank-add", maxRelativeError: bound)
            basisRecord.relativeError = max(basisRecord.relativeError ?? 0, error)
            basisRecord.sourceParameters = (basisRecord.sourceParameters ?? 0) + source.adapter.parameterCount(of: m)
            out.bases[b].conversion = basisRecord
            lines.append(Report.Line(module: m.name, projectedError: chosen.errors[i], error: error, ranksBefore: before,
                                     ranksAfter: [out.bases[b].ranks.out, out.bases[b].ranks.in]))
        }
        out.members.append(BankMember(name: source.name, cluster: chosen.cluster, metadata: source.adapter.metadata, modules: modules,
                                      replacedTensors: source.adapter.replacedTensors, sourceBytes: source.sourceBytes))
        if var c = out.conversion {
            c.relativeError = max(c.relativeError ?? 0, lines.map(\.error).max() ?? 0)
            c.sourceParameters = (c.sourceParameters ?? 0) + source.adapter.modules.reduce(0) { $0 + source.adapter.parameterCount(of: $1) }
            out.conversion = c
        }
        return (out, Report(member: source.name, cluster: chosen.cluster, bound: bound, lines: lines))
    }

    /// Extends basis `b` with the directions member `f` needs to meet `bound`: the existing columns
    /// lead, the new ones span what they miss of `f`, and the ranks are the smallest-size pair (at
    /// least the old ones) meeting `f`'s budget. Existing members' cores get zero rows and columns.
    static func extend(_ bank: inout AdapterBank, basis b: Int, with f: MemberFactors, bound: Double, module m: AdapterModule) throws {
        let old = bank.bases[b]
        let dtype = old.outBasis.dtype
        let outSide = ModeBasis(dimension: m.outFeatures, widths: [f.triangleA.rows], leading: old.outBasis.matrix()) { _ in f.outBlock }
        let inSide = ModeBasis(dimension: m.inFeatures, widths: [f.triangleB.rows], leading: old.inBasis.matrix()) { _ in f.inBlock }
        let served = bank.members.reduce(0) { $0 + ($1.modules.contains { $0.basis == old.name } ? 1 : 0) } + 1
        let ranks = BankRanks.choose(outSide: outSide, inSide: inSide,
                                     budgets: [BankBuilder.budget(bound, dtype: dtype, outRank: outSide.count, inRank: inSide.count)],
                                     outFeatures: m.outFeatures, inFeatures: m.inFeatures,
                                     minimumOut: old.ranks.out, minimumIn: old.ranks.in, members: served)
        // The leading columns are the stored values (exact in f64), so storing them again is exact.
        bank.bases[b].outBasis = StoredTensor(outSide.basis.columns(0..<ranks.out), dtype: dtype)
        bank.bases[b].inBasis = StoredTensor(inSide.basis.columns(0..<ranks.in), dtype: dtype)
        for i in bank.members.indices {
            for k in bank.members[i].modules.indices where bank.members[i].modules[k].basis == old.name {
                let core = bank.members[i].modules[k].core
                bank.members[i].modules[k].core = padded(core, to: [ranks.out, ranks.in])
            }
        }
    }

    /// `core` (`[r, c]`) in the top-left corner of zeros of `shape`, same dtype, bytes moved exactly.
    static func padded(_ core: StoredTensor, to shape: [Int]) -> StoredTensor {
        let w = core.dtype.byteWidth, rows = core.shape[0], cols = core.shape[1]
        var bytes = [UInt8](repeating: 0, count: shape[0] * shape[1] * w)
        core.bytes.withUnsafeBytes { src in
            for i in 0..<rows {
                for j in 0..<(cols * w) { bytes[(i * shape[1]) * w + j] = src[(i * cols) * w + j] }
            }
        }
        return StoredTensor(dtype: core.dtype, shape: shape, bytes: bytes)
    }

    /// Four significant digits, for messages.
    static func format(_ x: Double) -> String {
        guard x != 0, x.isFinite else { return "\(x)" }
        var scale = 1.0
        while abs(x) * scale < 1000 { scale *= 10 }
        while abs(x) * scale >= 10000 { scale /= 10 }
        return "\((x * scale).rounded() / scale)"
    }
}
