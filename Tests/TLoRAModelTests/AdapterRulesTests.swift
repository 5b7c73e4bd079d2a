import Testing
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// The structural rules of docs/FORMAT.md ("Semantic rules"), checked from shapes alone.
@Suite struct AdapterRulesTests {
    static func tensor(_ shape: [Int]) -> StoredTensor {
        StoredTensor([Float](repeating: 0.5, count: shape.reduce(1, *)), shape: shape)
    }

    static func lowRank(_ name: String, out: Int = 6, in inn: Int = 4, a: [Int] = [2, 4], b: [Int] = [6, 2]) -> AdapterModule {
        AdapterModule(name: name, outFeatures: out, inFeatures: inn, scale: 1, update: .lowRank(a: tensor(a), b: tensor(b)))
    }

    /// The error must be of kind `code` and name `subject`; `problem` (which rule of that kind) must appear in the message.
    static func expectRejected(_ adapter: Adapter, subject: String, problem: String, code: ModelError.Code = .shapeMismatch,
                               sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try adapter.validate()
            Issue.record("accepted an adapter that breaks: \(problem)", sourceLocation: sourceLocation)
        } catch let error as ModelError {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
            #expect(error.subject == subject, sourceLocation: sourceLocation)
            #expect(error.description.contains(problem), "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: DType.allCases)
    func everyKindOfSampleIsValid(dtype: DType) throws {
        try SampleAdapters.everyKind(seed: 1, dtype: dtype).validate()
    }

    @Test func lowRankShapesMustAgreeWithTheLayer() {
        Self.expectRejected(Adapter(modules: [Self.lowRank("m", a: [2, 5])]), subject: "m", problem: "layer has 4 inputs")
        Self.expectRejected(Adapter(modules: [Self.lowRank("m", b: [6, 3])]), subject: "m", problem: "must be 6×2")
        Self.expectRejected(Adapter(modules: [Self.lowRank("m", b: [5, 2])]), subject: "m", problem: "must be 6×2")
        Self.expectRejected(Adapter(modules: [Self.lowRank("m", a: [0, 4], b: [6, 0])]), subject: "m", problem: "rank 0")
        Self.expectRejected(Adapter(modules: [Self.lowRank("m", a: [2, 4, 1])]), subject: "m", problem: "must be matrices")
        Self.expectRejected(Adapter(modules: [Self.lowRank("m", out: 0, b: [0, 2])]), subject: "m", problem: "is empty")
        var m = Self.lowRank("m")
        m.scale = .nan
        Self.expectRejected(Adapter(modules: [m]), subject: "m", problem: "not finite", code: .invalidValue)
        m.scale = -.infinity
        Self.expectRejected(Adapter(modules: [m]), subject: "m", problem: "not finite", code: .invalidValue)
    }

    @Test func tensorTrainBondsAndModesMustChain() {
        func tt(_ cores: [[Int]], out: Int = 6, in inn: Int = 4) -> Adapter {
            Adapter(modules: [AdapterModule(name: "t", outFeatures: out, inFeatures: inn, scale: 1,
                                            update: .tensorTrain(TensorTrain(cores: cores.map(Self.tensor))))])
        }
        #expect(throws: Never.self) { try tt([[1, 2, 1, 3], [3, 3, 1, 2], [2, 1, 4, 1]]).validate() }
        Self.expectRejected(tt([]), subject: "t", problem: "without cores")
        Self.expectRejected(tt([[2, 6, 4, 1]]), subject: "t", problem: "starts with rank 2")
        Self.expectRejected(tt([[1, 2, 1, 3], [2, 3, 4, 1]]), subject: "t", problem: "previous core ends with 3")
        Self.expectRejected(tt([[1, 6, 4, 2]]), subject: "t", problem: "must end with rank 1")
        Self.expectRejected(tt([[1, 2, 1, 3], [3, 2, 4, 1]]), subject: "t", problem: "multiply to 4")
        Self.expectRejected(tt([[1, 6, 4]]), subject: "t", problem: "must be 4-D")
        Self.expectRejected(tt([[1, 6, 0, 1]]), subject: "t", problem: "empty dimension")
    }

    @Test func tuckerSlicesMustFitTheirGroup() {
        let group = TuckerGroup(name: "g", core: Self.tensor([2, 2, 2]), factors: [Self.tensor([4, 2]), Self.tensor([6, 2]), Self.tensor([3, 2])],
                                modes: [TuckerMode(role: .column, name: "in"), TuckerMode(role: .row, name: "out"),
                                        TuckerMode(role: .member, name: "projection", labels: ["q", "k", "v"])])
        func slice(_ g: String, _ index: [Int], out: Int = 6, in inn: Int = 4) -> AdapterModule {
            AdapterModule(name: "s\(index)", outFeatures: out, inFeatures: inn, scale: 1, update: .tuckerSlice(group: g, index: index))
        }
        #expect(throws: Never.self) { try Adapter(modules: [slice("g", [0]), slice("g", [2])], tuckerGroups: [group]).validate() }
        Self.expectRejected(Adapter(modules: [slice("h", [0])], tuckerGroups: [group]), subject: "s[0]", problem: "does not exist", code: .unknownReference)
        Self.expectRejected(Adapter(modules: [slice("g", [3])], tuckerGroups: [group]), subject: "s[3]", problem: "outside group g")
        Self.expectRejected(Adapter(modules: [slice("g", [-1])], tuckerGroups: [group]), subject: "s[-1]", problem: "outside group g")
        Self.expectRejected(Adapter(modules: [slice("g", [0, 0])], tuckerGroups: [group]), subject: "s[0, 0]", problem: "has 2 entries")
        Self.expectRejected(Adapter(modules: [slice("g", [1], out: 4, in: 6)], tuckerGroups: [group]), subject: "s[1]", problem: "holds 6×4 slices")
        var shared = slice("g", [1])
        shared.name = "other"
        shared.target = "other.weight"
        Self.expectRejected(Adapter(modules: [slice("g", [1]), shared], tuckerGroups: [group]), subject: "other", problem: "already uses Tucker slice g/1", code: .duplicateName)
    }

    @Test func tuckerGroupsMustBeConsistent() {
        let modes = [TuckerMode(role: .column, name: "in"), TuckerMode(role: .row, name: "out")]
        func group(core: [Int], factors: [[Int]], modes: [TuckerMode] = modes) -> Adapter {
            Adapter(tuckerGroups: [TuckerGroup(name: "g", core: Self.tensor(core), factors: factors.map(Self.tensor), modes: modes)])
        }
        #expect(throws: Never.self) { try group(core: [2, 3], factors: [[4, 2], [5, 3]]).validate() }
        Self.expectRejected(group(core: [2], factors: [[4, 2]], modes: [modes[0]]), subject: "Tucker group g", problem: "at least 2 modes")
        Self.expectRejected(group(core: [2, 3], factors: [[4, 2]]), subject: "Tucker group g", problem: "1 factors")
        Self.expectRejected(group(core: [2, 3], factors: [[4, 2], [5, 2]]), subject: "Tucker group g", problem: "factor 1 has shape [5, 2]")
        Self.expectRejected(group(core: [2, 3], factors: [[4, 2], [5, 3]], modes: [modes[0], modes[0]]), subject: "Tucker group g",
                            problem: "at least one row mode and one column mode")
        let labelled = modes + [TuckerMode(role: .member, name: "layer", labels: ["0", "1", "2"])]
        Self.expectRejected(group(core: [2, 3, 2], factors: [[4, 2], [5, 3], [2, 2]], modes: labelled), subject: "Tucker group g",
                            problem: "3 labels for 2 members")
    }

    @Test func namesAndTargetsAreUnique() {
        Self.expectRejected(Adapter(modules: [Self.lowRank("m"), Self.lowRank("m")]), subject: "m", problem: "listed twice", code: .duplicateName)
        var second = Self.lowRank("n")
        second.target = "m.weight"
        Self.expectRejected(Adapter(modules: [Self.lowRank("m"), second]), subject: "n", problem: "already updates m.weight", code: .duplicateName)
        let r = ReplacedTensor(target: "lm_head.weight", value: Self.tensor([2, 2]))
        Self.expectRejected(Adapter(replacedTensors: [r, r]), subject: "lm_head.weight", problem: "replaced twice", code: .duplicateName)
        // A target may be replaced and updated (PEFT's adapted embedding with saved base weights).
        let both = Adapter(modules: [Self.lowRank("m")], replacedTensors: [ReplacedTensor(target: "m.weight", value: Self.tensor([6, 4]))])
        #expect(throws: Never.self) { try both.validate() }
    }

    @Test func doraMagnitudeHasOneValuePerOutput() {
        var m = Self.lowRank("m")
        m.doraMagnitude = Self.tensor([6])
        #expect(throws: Never.self) { try Adapter(modules: [m]).validate() }
        m.doraMagnitude = Self.tensor([4])
        Self.expectRejected(Adapter(modules: [m]), subject: "m", problem: "DoRA magnitude has shape [4]")
    }

    @Test func sizesThatOverflowAreRejectedNotTrapped() {
        // Shapes only (what a reader has before loading data): dimensions whose product overflows Int.
        let huge = Int.max / 2
        #expect(throws: ModelError.self) {
            try AdapterRules.check(module: "t", outFeatures: 4, inFeatures: 4, scale: 1,
                                   update: .tensorTrain(cores: [[1, huge, 1, 2], [2, huge, 1, 1]]), groups: [:])
        }
        #expect(throws: ModelError.self) {
            try AdapterRules.check(group: TuckerGroupShape(name: "g", core: [1, 1, 1], factors: [[huge, 1], [huge, 1], [4, 1]],
                                                           modes: [TuckerMode(role: .column, name: "in"), TuckerMode(role: .row, name: "out"),
                                                                   TuckerMode(role: .member, name: "layer")]))
        }
    }

    @Test func derivedShapesFollowTheModes() {
        let tt = TensorTrain(cores: [[1, 2, 1, 3], [3, 3, 1, 2], [2, 1, 4, 1]].map(Self.tensor))
        #expect(tt.rowModes == [2, 3, 1])
        #expect(tt.columnModes == [1, 1, 4])
        #expect(tt.ranks == [1, 3, 2, 1])
        #expect(tt.parameterCount == 6 + 18 + 8)
        let g = TuckerGroup(name: "g", core: Self.tensor([2, 2, 3, 2]), factors: [[8, 2], [4, 2], [3, 3], [5, 2]].map(Self.tensor),
                            modes: [TuckerMode(role: .column, name: "in"), TuckerMode(role: .row, name: "head_dim"),
                                    TuckerMode(role: .row, name: "head"), TuckerMode(role: .member, name: "layer")])
        #expect(g.inFeatures == 8 && g.outFeatures == 12 && g.memberDimensions == [5])
        #expect(g.parameterCount == 24 + 16 + 8 + 9 + 10)
        let conv = AdapterModule(name: "c_attn", layout: .inOut, outFeatures: 192, inFeatures: 64, scale: 1, update: .dense(Self.tensor([192, 64])))
        #expect(conv.targetShape == [64, 192])
        #expect(conv.target == "c_attn.weight")
    }

    @Test func metadataKeepsOrderAndReplacesInPlace() {
        var m = AdapterMetadata([("b", "1"), ("a", "2")])
        m["b"] = "3"
        m.sourceFormat = "peft"
        #expect(m.entries.map(\.key) == ["b", "a", "source_format"])
        #expect(m["b"] == "3" && m.sourceFormat == "peft")
        m["a"] = nil
        #expect(m.entries.map(\.key) == ["b", "source_format"])
        #expect(m != AdapterMetadata([("source_format", "peft"), ("b", "3")]), "order is part of the value")
    }
}
