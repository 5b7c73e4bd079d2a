import Testing
@testable import TLoRAConvert
import TLoRAInterop
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

@Suite struct BankTests {
    static func sources(_ adapters: [Adapter], prefix: String = "m") -> [BankBuilder.Source] {
        adapters.enumerated().map { BankBuilder.Source(name: "\(prefix)\($0.offset)", adapter: $0.element) }
    }

    /// Every member's every module, densely: ‖ΔW_bank − ΔW_original‖ / ‖ΔW_original‖.
    static func denseErrors(_ bank: AdapterBank, _ sources: [BankBuilder.Source]) throws -> [[Double]] {
        try sources.map { s in
            let member = try bank.adapter(member: s.name, dtype: .f64)
            return try s.adapter.modules.map { m in
                let x = try DenseDelta.of(m, in: s.adapter)
                let y = try DenseDelta.of(try #require(member.module(named: m.name)), in: member)
                return Tolerance.relativeError(y.storage, x.storage)
            }
        }
    }

    @Test(arguments: [0.01, 0.05, 0.1, 0.3])
    func boundHoldsForEveryMemberAndModule(e: Double) throws {
        // Shared structure plus noise: the bank can compress, and each member's error still counts.
        let adapters = SampleAdapters.bankMembers(seed: 11, members: 9, modules: 3, out: 40, in: 32, rank: 4, shared: 6, noise: 0.3)
        let sources = Self.sources(adapters)
        let (bank, summary) = try BankBuilder.build(sources, options: .init(maxRelativeError: e))
        try bank.validate()
        let errors = try Self.denseErrors(bank, sources)
        for (s, row) in zip(sources, errors) {
            for (m, err) in zip(s.adapter.modules, row) {
                #expect(err <= e, "\(s.name) \(m.name): \(err) > \(e)")
                let recorded = try #require(bank.member(named: s.name)?.module(named: m.name)?.conversion?.relativeError)
                #expect(abs(recorded - err) <= 1e-6 + 1e-3 * err, "recorded \(recorded) vs dense \(err)")
            }
        }
        #expect(summary.worstError <= e)
        // Some member sits near its bound: the truncation uses the room it is given.
        #expect(errors.flatMap { $0 }.max()! > e / 4)
    }

    @Test func boundHoldsForSmallMembersBesideLargeOnes() throws {
        // Norms differ by 10⁶: a group bound would let the small members' errors be anything.
        var adapters = SampleAdapters.bankMembers(seed: 12, members: 6, modules: 2, out: 24, in: 20, rank: 3, shared: 4, noise: 0.5)
        for j in adapters.indices { for i in adapters[j].modules.indices { adapters[j].modules[i].scale = j < 3 ? 1e3 : 1e-3 } }
        let sources = Self.sources(adapters)
        let (bank, _) = try BankBuilder.build(sources, options: .init(maxRelativeError: 0.05, dtype: .f64))
        for row in try Self.denseErrors(bank, sources) { for err in row { #expect(err <= 0.05) } }
    }

    @Test(arguments: [DType.f32, .f64])
    func losslessBankIsExact(dtype: DType) throws {
        let adapters = SampleAdapters.bankMembers(seed: 13, members: 5, modules: 2, out: 30, in: 26, rank: 3, shared: 5, noise: 1)
        let sources = Self.sources(adapters)
        let (bank, _) = try BankBuilder.build(sources, options: .init(maxRelativeError: 0, dtype: dtype))
        for row in try Self.denseErrors(bank, sources) {
            for err in row { #expect(err <= (dtype == .f64 ? 1e-12 : 1e-6), "\(err)") }
        }
    }

    @Test func sharedStructureCompresses() throws {
        // 12 members of rank 4 whose updates all live in one 6-dimensional pair of subspaces.
        let adapters = SampleAdapters.bankMembers(seed: 14, members: 12, modules: 2, out: 64, in: 48, rank: 4, shared: 6, noise: 0)
        let sources = Self.sources(adapters)
        let (bank, summary) = try BankBuilder.build(sources, options: .init(maxRelativeError: 1e-4))
        for p in summary.pieces { #expect(p.ranks == [6, 6], "\(p.module): \(p.ranks)") }
        #expect(summary.parameters < summary.sourceParameters / 2)
        #expect(bank.parameterCount == summary.parameters)
    }

    @Test func fixedRankIsRespected() throws {
        let adapters = SampleAdapters.bankMembers(seed: 15, members: 4, modules: 1, out: 20, in: 16, rank: 3, shared: 8, noise: 1)
        let (bank, summary) = try BankBuilder.build(Self.sources(adapters), options: .init(maxRelativeError: nil, rank: 5))
        #expect(bank.bases.allSatisfy { $0.ranks == (5, 5) })
        #expect(bank.conversion?.maxRelativeError == nil)
        #expect(summary.worstError > 0)
    }

    @Test func clustersSeparatePlantedGroupsAndAreSmaller() throws {
        // Two groups with unrelated subspaces: one set of bases must span both.
        let adapters = SampleAdapters.bankMembers(seed: 16, members: 10, modules: 2, out: 48, in: 40, rank: 3, shared: 5, noise: 0.05, groups: 2)
        let sources = Self.sources(adapters)
        let (bank, summary) = try BankBuilder.build(sources, options: .init(maxRelativeError: 0.05, clusters: 2))
        #expect(bank.clusters == [0, 1])
        // Members of one planted group share a cluster.
        for m in bank.members { #expect(m.cluster == bank.members[Int(m.name.dropFirst())! % 2].cluster, "\(m.name)") }
        #expect(summary.clusterTrials.count == 2)
        #expect(summary.clusterTrials[1].parameters < summary.clusterTrials[0].parameters)
        for row in try Self.denseErrors(bank, sources) { for err in row { #expect(err <= 0.05) } }
        try bank.validate()
    }

    @Test func clustersAreDroppedWhenNotSmaller() throws {
        let adapters = SampleAdapters.bankMembers(seed: 17, members: 8, modules: 1, out: 32, in: 32, rank: 3, shared: 4, noise: 0)
        let (bank, summary) = try BankBuilder.build(Self.sources(adapters), options: .init(maxRelativeError: 0.01, clusters: 3))
        #expect(bank.clusters == [0])
        #expect(summary.notes.contains { $0.contains("kept one") })
    }

    @Test func memberExtractionIsALoRAOfTheSharedRank() throws {
        let adapters = SampleAdapters.bankMembers(seed: 18, members: 3, modules: 2, out: 20, in: 12, rank: 2, shared: 3, noise: 0.2)
        let sources = Self.sources(adapters)
        let (bank, _) = try BankBuilder.build(sources, options: .init(maxRelativeError: 0.1))
        let member = try bank.adapter(member: "m1")
        try member.validate()
        for (m, bm) in zip(member.modules, bank.members[1].modules) {
            guard case .lowRank(let a, let b) = m.update else { Issue.record("not low rank"); continue }
            let basis = try #require(bank.basis(named: bm.basis))
            #expect(a.shape == [min(basis.ranks.out, basis.ranks.in), 12] && b.shape[1] == a.shape[0])
            #expect(m.scale == sources[1].adapter.module(named: m.name)!.scale)
        }
        #expect(member.metadata["source_format"] == "test")
        #expect(throws: ModelError.self) { try bank.adapter(member: "nobody") }
    }

    @Test func membersWithDifferentShapesAreRefused() throws {
        let a = SampleAdapters.lora(seed: 1, modules: 1, out: 8, in: 6, rank: 2)
        let b = SampleAdapters.lora(seed: 2, modules: 1, out: 8, in: 7, rank: 2)
        #expect(throws: ConvertError.self) { try BankBuilder.build(Self.sources([a, b]), options: .init()) }
        #expect(throws: ConvertError.self) { try BankBuilder.build([.init(name: "x", adapter: a), .init(name: "x", adapter: a)], options: .init()) }
    }

    @Test func modulesABankCannotHoldAreRefused() throws {
        var conv = SampleAdapters.lora(seed: 7, modules: 1, out: 8, in: 6, rank: 2)
        conv.modules[0].kernel = [3]
        let message = "\((#expect(throws: ConvertError.self) { try BankBuilder.build(Self.sources([conv]), options: .init()) })!)"
        #expect(message.contains("module model.layers.0.self_attn.q_proj adapts a convolution, which a bank member cannot hold"), "\(message)")
        let plain = SampleAdapters.lora(seed: 8, modules: 1, out: 8, in: 6, rank: 2)
        let (bank, _) = try BankBuilder.build(Self.sources([plain]), options: .init())
        #expect(throws: ConvertError.self) { try BankAdd.add(.init(name: "conv", adapter: conv), to: bank, options: .init(rebuild: true)) }
    }

    @Test func membersMayHaveDifferentModules() throws {
        let a = SampleAdapters.lora(seed: 3, modules: 2, out: 8, in: 6, rank: 2)
        let b = SampleAdapters.lora(seed: 4, modules: 3, out: 8, in: 6, rank: 2)
        let sources = Self.sources([a, b])
        let (bank, _) = try BankBuilder.build(sources, options: .init(maxRelativeError: 0.01))
        #expect(bank.members.map(\.modules.count) == [2, 3])
        #expect(bank.bases.count == 3)
        for row in try Self.denseErrors(bank, sources) { for err in row { #expect(err <= 0.01) } }
    }

    // MARK: bank add

    @Test func addProjectsAMemberOfTheSameSubspaces() throws {
        let adapters = SampleAdapters.bankMembers(seed: 19, members: 7, modules: 2, out: 32, in: 24, rank: 3, shared: 5, noise: 0)
        let sources = Self.sources(Array(adapters.prefix(6)))
        let (bank, _) = try BankBuilder.build(sources, options: .init(maxRelativeError: 0.01))
        let new = BankBuilder.Source(name: "new", adapter: adapters[6])
        let (grown, report) = try BankAdd.add(new, to: bank, options: .init())
        #expect(!report.extended)
        #expect(report.worstError <= 0.01)
        #expect(grown.bases == bank.bases.map { b in var b = b; b.conversion = grown.basis(named: b.name)!.conversion; return b })
        for row in try Self.denseErrors(grown, [new]) { for err in row { #expect(err <= 0.01) } }
    }

    @Test func addRefusesAnOutsiderUnlessRebuilt() throws {
        let group = SampleAdapters.bankMembers(seed: 20, members: 5, modules: 2, out: 32, in: 24, rank: 3, shared: 4, noise: 0)
        let outsider = SampleAdapters.bankMembers(seed: 99, members: 1, modules: 2, out: 32, in: 24, rank: 3, shared: 4, noise: 0)[0]
        let sources = Self.sources(group)
        let (bank, _) = try BankBuilder.build(sources, options: .init(maxRelativeError: 0.02))
        let new = BankBuilder.Source(name: "out", adapter: outsider)
        #expect(throws: ConvertError.self) { try BankAdd.add(new, to: bank, options: .init()) }
        let (grown, report) = try BankAdd.add(new, to: bank, options: .init(rebuild: true))
        #expect(report.extended)
        #expect(report.worstProjectedError > 0.02 && report.worstError <= 0.02)
        try grown.validate()
        for row in try Self.denseErrors(grown, [new]) { for err in row { #expect(err <= 0.02) } }
        // The existing members are exactly what they were.
        for s in sources {
            let before = try bank.adapter(member: s.name, dtype: .f64), after = try grown.adapter(member: s.name, dtype: .f64)
            for (x, y) in zip(before.modules, after.modules) {
                let dx = try DenseDelta.of(x, in: before), dy = try DenseDelta.of(y, in: after)
                #expect(Tolerance.relativeError(dy.storage, dx.storage) <= 1e-12)
            }
        }
        #expect(throws: ConvertError.self) { try BankAdd.add(.init(name: "m0", adapter: outsider), to: bank, options: .init()) }
    }

    @Test func addCreatesBasesForANewModule() throws {
        let a = SampleAdapters.lora(seed: 5, modules: 1, out: 8, in: 6, rank: 2)
        let b = SampleAdapters.lora(seed: 6, modules: 2, out: 8, in: 6, rank: 2)
        let (bank, _) = try BankBuilder.build(Self.sources([a]), options: .init(maxRelativeError: 0.01))
        #expect(throws: ConvertError.self) { try BankAdd.add(.init(name: "b", adapter: b), to: bank, options: .init()) }
        let (grown, _) = try BankAdd.add(.init(name: "b", adapter: b), to: bank, options: .init(rebuild: true))
        try grown.validate()
        for row in try Self.denseErrors(grown, [.init(name: "b", adapter: b)]) { for err in row { #expect(err <= 0.01) } }
    }
}

/// The bound on real members: the 16 LoRAs trained on all-MiniLM-L6-v2 (Fixtures/bank).
@Suite struct RealBankTests {
    static func members() throws -> [BankBuilder.Source] {
        try Fixtures.bankMembers.map { BankBuilder.Source(name: $0, adapter: try PEFTReader.read(directory: Fixtures.bankMember($0))) }
    }

    @Test func boundHoldsOnTrainedMembers() throws {
        let e = 0.05
        let sources = try Self.members()
        #expect(sources.count == 16)
        let (bank, summary) = try BankBuilder.build(sources, options: .init(maxRelativeError: e))
        let errors = try BankTests.denseErrors(bank, sources)
        #expect(errors.flatMap { $0 }.count == 16 * 12)
        for (s, row) in zip(sources, errors) { for err in row { #expect(err <= e, "\(s.name): \(err)") } }
        #expect(summary.worstError <= e && summary.worstError > e / 2)
    }

    @Test func losslessBankOfTrainedMembersIsExact() throws {
        let sources = try Self.members()
        let (bank, _) = try BankBuilder.build(sources, options: .init(maxRelativeError: 0))
        for row in try BankTests.denseErrors(bank, sources) { for err in row { #expect(err <= 1e-6, "\(err)") } }
    }
}
