import Testing
@testable import TLoRAConvert
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

@Suite struct DenseToTuckerTests {
    /// Layers × {q,k,v,o}; k and v narrower when `gqa` (as Llama's grouped-query attention).
    static func attention(seed: UInt64, layers: Int, hidden: Int, rank: Int, gqa: Bool = false) -> Adapter {
        var g = SeededGenerator(seed: seed)
        var modules: [AdapterModule] = []
        for l in 0..<layers {
            for p in ["q_proj", "k_proj", "v_proj", "o_proj"] {
                let out = gqa && (p == "k_proj" || p == "v_proj") ? hidden / 2 : hidden
                let a = RandomTensors.gaussianMatrix(rows: rank, cols: hidden, using: &g, as: Float.self)
                let b = RandomTensors.gaussianMatrix(rows: out, cols: rank, scale: 0.05, using: &g, as: Float.self)
                modules.append(AdapterModule(name: "model.layers.\(l).self_attn.\(p)", outFeatures: out, inFeatures: hidden, scale: 2,
                                             update: .lowRank(a: StoredTensor(a, dtype: .f32), b: StoredTensor(b, dtype: .f32))))
            }
        }
        return Adapter(modules: modules)
    }

    static func checkEveryModule(_ source: Adapter, _ converted: Adapter, tolerance: Double) throws {
        for m in source.modules {
            let c = try #require(converted.module(named: m.name))
            let x = try DenseDelta.of(m, in: source), y = try DenseDelta.of(c, in: converted)
            #expect(Tolerance.relativeError(y.storage, x.storage) <= tolerance, "\(m.name)")
        }
    }

    @Test(arguments: GroupKind.allCases, [1e-4, 0.05, 0.3])
    func groupBoundHolds(kind: GroupKind, e: Double) throws {
        let source = Self.attention(seed: 21, layers: 2, hidden: 16, rank: 3)
        let (converted, summary) = try DenseToTucker.convert(source, options: .init(target: .init(maxRelativeError: e), group: kind, heads: 4, dtype: .f64))
        try converted.validate()
        #expect(!summary.lines.isEmpty)
        for line in summary.lines {
            #expect(line.relativeError <= e * (1 + 1e-9), "\(line.name): \(line.relativeError)")
            // Independent check: the group's stacked error from dense slices.
            var d2 = 0.0, n2 = 0.0
            for name in line.members {
                let x = try DenseDelta.of(source.module(named: name)!, in: source), y = try DenseDelta.of(converted.module(named: name)!, in: converted)
                for i in x.storage.indices { d2 += (x.storage[i] - y.storage[i]) * (x.storage[i] - y.storage[i]); n2 += x.storage[i] * x.storage[i] }
            }
            #expect(abs((d2 / n2).squareRoot() - line.relativeError) <= 1e-9 + 1e-6 * line.relativeError)
        }
    }

    @Test(arguments: GroupKind.allCases)
    func losslessRebuilds(kind: GroupKind) throws {
        let source = Self.attention(seed: 4, layers: 2, hidden: 12, rank: 2)
        let (converted, _) = try DenseToTucker.convert(source, options: .init(target: .lossless, group: kind, heads: 3, dtype: .f64))
        try Self.checkEveryModule(source, converted, tolerance: 1e-12)
    }

    @Test func qkvStacksAlongAThirdMode() throws {
        let source = Self.attention(seed: 5, layers: 1, hidden: 8, rank: 2)
        let (converted, summary) = try DenseToTucker.convert(source, options: .init(target: .lossless, group: .qkv, dtype: .f64))
        let group = try #require(converted.tuckerGroups.first)
        #expect(group.modes.map(\.role) == [.column, .row, .member])
        #expect(group.modes[2].labels == ["q_proj", "k_proj", "v_proj"])
        #expect(group.dimensions == [8, 8, 3])
        #expect(summary.unchanged.map(\.name) == ["model.layers.0.self_attn.o_proj"])
    }

    @Test func unequalShapesAreNeverStacked() throws {
        let source = Self.attention(seed: 6, layers: 2, hidden: 8, rank: 2, gqa: true)
        let (converted, summary) = try DenseToTucker.convert(source, options: .init(target: .init(maxRelativeError: 0.01), group: .qkv, dtype: .f64))
        for g in converted.tuckerGroups {
            let labels = g.modes.last?.labels ?? []
            #expect(labels == ["q_proj"] || labels == ["k_proj", "v_proj"], "\(g.name): \(labels)")
        }
        #expect(summary.notes.contains { $0.reason.contains("k_proj,v_proj has another shape") })
        try Self.checkEveryModule(source, converted, tolerance: 0.01 * 3)
    }

    @Test func fixedRanksAndRefinementNeverIncreaseError() throws {
        let source = Self.attention(seed: 8, layers: 3, hidden: 12, rank: 3)
        let plain = try DenseToTucker.convert(source, options: .init(target: .init(), group: .depth, ranks: [4, 4, 2], dtype: .f64)).1
        let refined = try DenseToTucker.convert(source, options: .init(target: .init(), group: .depth, ranks: [4, 4, 2], refine: 3, dtype: .f64)).1
        for (a, b) in zip(plain.lines, refined.lines) {
            #expect(b.relativeError <= a.relativeError + 1e-12)
            #expect(a.ranks == [4, 4, 2])
        }
    }

    /// The factored ST-HOSVD (member modes by TSQR over slabs, never the whole core) chooses the
    /// same ranks, tails and subspaces as ST-HOSVD of the dense core.
    @Test(arguments: [GroupKind.depth, .qkvDepth, .attQKVDepth], [0.0, 0.02, 0.2])
    func factoredMatchesDenseSTHOSVD(kind: GroupKind, e: Double) throws {
        let source = Self.attention(seed: 31, layers: 3, hidden: 16, rank: 3)
        let (plans, _) = try Grouping.plan(source, kind: kind, projections: nil, heads: 4)
        for plan in plans {
            var members: [(LowRankForm, Double, [Int])] = []
            for p in plan.members {
                let m = try #require(source.module(named: p.name))
                members.append((try #require(try LowRankForm.of(m, in: source)), m.scale, p.index))
            }
            let rowDims = plan.heads.map { [plan.out / $0, $0] } ?? [plan.out]
            let stacked = try StackedTucker(rowDims: rowDims, inFeatures: plan.inFeatures, members: members,
                                            memberDims: plan.memberModes.map(\.labels.count))
            let dense = stacked.denseCore()
            #expect(abs(TensorOps.norm(dense) - stacked.norm) <= 1e-12 * stacked.norm)
            let tolerance = e * stacked.norm / Double(stacked.dimensions.count).squareRoot()
            let factored = stacked.factoredSTHOSVD(tolerance: tolerance, ranks: nil, maxRank: .max)
            let reference = SmallTucker.sthosvd(dense, tolerance: tolerance, ranks: nil, maxRank: .max)
            #expect(factored.factors.map(\.cols) == reference.0.factors.map(\.cols), "\(plan.name)")
            for (a, b) in zip(factored.tails, reference.1) { #expect(abs(a - b) <= 1e-10 * stacked.norm) }
            // Same subspaces: the projectors agree.
            for (u, v) in zip(factored.factors, reference.0.factors) {
                let pu = LA.mul(u, u, tb: true), pv = LA.mul(v, v, tb: true)
                #expect(Tolerance.relativeError(pu.storage, pv.storage) <= 1e-8, "\(plan.name)")
            }
            // And the core rebuilds the same tensor.
            let rebuilt = SmallTucker(factors: factored.factors, core: factored.core.dense()).expanded()
            #expect(TensorOps.distance(rebuilt, reference.0.expanded()) <= 1e-9 * stacked.norm)
        }
    }

    @Test func attNeedsHeads() {
        #expect {
            try DenseToTucker.convert(Self.attention(seed: 1, layers: 1, hidden: 8, rank: 2), options: .init(target: .lossless, group: .att))
        } throws: { ($0 as? ConvertError)?.code == .invalidOptions }
    }

    /// Grouped-query attention (issue 18, item 9): queries split into the query heads, keys and
    /// values into the key/value heads of the same size, and nothing else is head-split.
    @Test(arguments: [nil, 2] as [Int?])
    func gqaKeysAndValuesSplitIntoTheirOwnHeads(keyValueHeads: Int?) throws {
        let source = Self.attention(seed: 31, layers: 2, hidden: 16, rank: 2, gqa: true)  // k, v: 8 outputs
        let (converted, summary) = try DenseToTucker.convert(source, options: .init(target: .lossless, group: .att, heads: 4,
                                                                                    keyValueHeads: keyValueHeads, dtype: .f64))
        for g in converted.tuckerGroups {
            let isQuery = g.name.contains("q_proj")
            #expect(g.dimensions == [16, 4, isQuery ? 4 : 2], "\(g.name): \(g.dimensions)")
            #expect(g.modes.map(\.name) == ["in", "head_dim", "head"])
        }
        #expect(converted.tuckerGroups.count == 6)
        #expect(Set(summary.unchanged.map(\.name)) == ["model.layers.0.self_attn.o_proj", "model.layers.1.self_attn.o_proj"])
        #expect(summary.unchanged.allSatisfy { $0.reason.contains("not a query, key or value projection") })
        #expect(summary.notes.contains { $0.name.contains("k_proj") && $0.reason == "outputs split into 2 heads of 4 (key/value heads)" })
        #expect(summary.notes.contains { $0.name.contains("q_proj") && $0.reason == "outputs split into 4 heads of 4" })
        try Self.checkEveryModule(source, converted, tolerance: 1e-12)
    }

    @Test func keyValueHeadsOfTheWrongSizeAreLeftAloneAndSaid() throws {
        let source = Self.attention(seed: 32, layers: 1, hidden: 16, rank: 2, gqa: true)
        let (converted, summary) = try DenseToTucker.convert(source, options: .init(target: .lossless, group: .att, heads: 4, keyValueHeads: 4, dtype: .f64))
        #expect(converted.tuckerGroups.count == 1)
        #expect(summary.unchanged.contains { $0.name.hasSuffix("k_proj") && $0.reason.contains("differ from the query's head size 4") })
    }

    @Test func attWithoutAttentionProjectionsIsRefused() {
        let fused = Adapter(modules: [AdapterModule(name: "h.0.attn.c_attn", outFeatures: 24, inFeatures: 8, scale: 1,
                                                    update: .dense(StoredTensor([Double](repeating: 0.5, count: 24 * 8), shape: [24, 8], dtype: .f32)))])
        #expect { try DenseToTucker.convert(fused, options: .init(target: .lossless, group: .att, heads: 4)) } throws: {
            ($0 as? ConvertError)?.code == .invalidOptions
        }
        #expect {
            try DenseToTucker.convert(Self.attention(seed: 2, layers: 1, hidden: 8, rank: 2), options: .init(target: .lossless, group: .att, projections: ["o_proj"], heads: 2))
        } throws: { ($0 as? ConvertError)?.code == .invalidOptions }
    }

    /// to-lora of a Tucker group at no truncation (issue 18, item 7): directions that are only the
    /// f32 storage's rounding are dropped, so each slice comes back at its true rank; the source's
    /// parameter total counts the groups' cores and factors.
    @Test func toLoRAOfTuckerSlicesRecoversTheTrueRank() throws {
        let source = Self.attention(seed: 33, layers: 2, hidden: 32, rank: 4)
        let (tucker, _) = try DenseToTucker.convert(source, options: .init(target: .lossless, group: .qkvDepth, dtype: .f32))
        #expect(tucker.tuckerGroups.first.map { $0.core.shape[0] } ?? 0 > 4, "the group's in-mode rank exceeds each slice's rank")
        let (lora, summary) = try ToLoRA.convert(tucker, options: .init(target: .lossless))
        for m in lora.modules {
            guard case .lowRank(let a, _) = m.update else { Issue.record("\(m.name) is not low-rank"); continue }
            #expect(a.shape[0] == 4, "\(m.name): rank \(a.shape[0])")
        }
        #expect(summary.worstError <= 4 * DType.f32.unitRoundoff * 2, "\(summary.worstError)")
        let groupParameters = tucker.tuckerGroups.reduce(0) { $0 + $1.parameterCount }
        let oParameters = 2 * (4 * 32 + 32 * 4)
        #expect(summary.sourceParameters == groupParameters + oParameters)
        try Self.checkEveryModule(tucker, lora, tolerance: 1e-6)
    }
}
