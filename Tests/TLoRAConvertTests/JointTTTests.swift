import Testing
@testable import TLoRAConvert
import TLoRAInterop
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// `dense-to-tt --joint`: TensorGuide's joint train of both factors meets `--max-rel-error` on ΔW
/// (checked densely here, independently of the converter's own measurement), a-priori and after
/// the measured search, and rebuilds ΔW to rounding when lossless.
@Suite struct JointTTTests {
    static let bounds = [1e-4, 0.05, 0.3]

    /// Seeded adapters: Gaussian factors, and factors with a geometric spectrum (so truncation bites).
    static func seeded(_ seed: UInt64) -> Adapter {
        var g = SeededGenerator(seed: seed)
        var a = SampleAdapters.lora(seed: seed, modules: 2, out: 48, in: 40, rank: 6)
        let b = TestMatrices.withSingularValues(TestMatrices.geometric(6, condition: 1e3), rows: 36, cols: 6, using: &g)
        let aa = RandomTensors.gaussianMatrix(rows: 6, cols: 64, using: &g, as: Double.self)
        a.modules.append(AdapterModule(name: "layers.9.decaying", outFeatures: 36, inFeatures: 64, scale: 0.7,
                                       update: .lowRank(a: StoredTensor(aa, dtype: .f32), b: StoredTensor(b, dtype: .f32))))
        return a
    }

    static func fixture(_ name: String) throws -> Adapter { try PEFTReader.read(directory: Fixtures.peft(name)) }

    /// ‖ΔW_x − ΔW_y‖_F / ‖ΔW_x‖_F, densely.
    static func denseError(_ m: AdapterModule, in x: Adapter, _ c: AdapterModule, in y: Adapter) throws -> Double {
        Tolerance.relativeError(try DenseDelta.of(c, in: y).storage, try DenseDelta.of(m, in: x).storage)
    }

    static func check(_ adapter: Adapter, e: Double, search: Bool) throws {
        let options = DenseToTT.Options(target: ConversionTarget(maxRelativeError: e), dtype: .f64, joint: true)
        for m in adapter.modules {
            let r = try JointTT.convert(m, in: adapter, options: options, search: search)
            guard case .jointTrain(let j) = r.module.update else { Issue.record("not a joint train"); continue }
            #expect(j.latent.doubles() == [1] && j.latentModes.allSatisfy { $0 == 1 })
            var converted = adapter
            converted.modules = [r.module]
            try converted.validate()
            let error = try Self.denseError(m, in: adapter, r.module, in: converted)
            #expect(error <= e * (1 + 1e-9), "\(m.name) E=\(e) search=\(search): \(error)")
            #expect(abs(error - r.line.relativeError) <= 1e-9 + 1e-6 * error, "\(m.name): reported \(r.line.relativeError), dense \(error)")
            #expect(r.line.parameters == j.parameterCount)
        }
    }

    @Test(arguments: bounds)
    func boundHoldsOnSeededAdapters(e: Double) throws {
        for seed: UInt64 in [1, 2, 3] {
            try Self.check(Self.seeded(seed), e: e, search: false)
            try Self.check(Self.seeded(seed), e: e, search: true)
        }
    }

    @Test(arguments: bounds)
    func boundHoldsOnRealAdapters(e: Double) throws {
        try Self.check(Self.fixture("llama-lora"), e: e, search: true)
        try Self.check(Self.fixture("minilm-trained"), e: e, search: true)
    }

    /// The a-priori η alone meets the bound on the trained adapter too (no measurement involved).
    @Test func aprioriAloneHoldsOnTrainedAdapter() throws {
        try Self.check(Self.fixture("minilm-trained"), e: 0.05, search: false)
    }

    @Test func losslessRebuildsDeltaToRounding() throws {
        for adapter in [Self.seeded(4), try Self.fixture("llama-lora")] {
            let (out, summary) = try DenseToTT.convert(adapter, options: .init(target: .lossless, dtype: .f64, joint: true))
            #expect(summary.worstError <= 1e-12)
            for (m, c) in zip(adapter.modules, out.modules) {
                #expect(try Self.denseError(m, in: adapter, c, in: out) <= 1e-12, "\(m.name)")
                guard case .jointTrain(let j) = c.update, case .lowRank(let a, _) = m.update else { Issue.record("kind"); continue }
                #expect(j.rank == a.shape[0], "\(m.name): the exact rank is kept")
            }
        }
    }

    /// The a-priori rule: for η from `apriori`, the worst-case bound 2η√(σ₁N)/F + η²N/F equals E.
    @Test func aprioriSolvesTheBound() {
        let s = [5.0, 3, 1, 0.5]
        let n = s.reduce(0, +), f = s.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for e in Self.bounds {
            let eta = JointTT.apriori(e, singularValues: s)
            let bound = 2 * eta * (s[0] * n).squareRoot() / f + eta * eta * n / f
            #expect(abs(bound - e) <= 1e-9 * e)
        }
        #expect(JointTT.apriori(0, singularValues: s) == 0)
    }

    /// A converted adapter and an imported TensorGuide adapter are the same kind of update and go
    /// through the container, to-lora and back identically.
    @Test func convertedAndImportedMeanTheSame() throws {
        let adapter = Self.seeded(5)
        let (joint, _) = try DenseToTT.convert(adapter, options: .init(target: .lossless, joint: true))
        let (lora, summary) = try ToLoRA.convert(joint, options: .init())
        #expect(summary.worstError <= 1e-6)
        for (m, c) in zip(adapter.modules, lora.modules) {
            #expect(try Self.denseError(m, in: adapter, c, in: lora) <= 1e-6, "\(m.name)")
        }
    }
}

/// The worked examples of docs/FORMAT.md §2.3 for `joint_train` and `column_order`.
@Suite struct ResearchSpecExampleTests {
    @Test func jointTrainExampleGivesTheSpecMatrix() throws {
        // v = [1, 2, 3, 4, 0.5, −0.5] over modes (2, 3): W1 = [1, 2, 3, 4]ᵀ (in 4 × r 1), W2 = [0.5, −0.5].
        let g1 = StoredTensor([1, 0, 0, 1], shape: [1, 1, 2, 2])
        let g2 = StoredTensor([1, 2, 3, 4, 0.5, -0.5], shape: [2, 1, 3, 1])
        let m = AdapterModule(name: "j", outFeatures: 2, inFeatures: 4, scale: 2,
                              update: .jointTrain(JointTrain(cores: [g1, g2], latent: StoredTensor([1], shape: [1, 1]), rank: 1)))
        let a = Adapter(modules: [m])
        try a.validate()
        #expect(try DenseDelta.of(m, in: a).storage == [1, 2, 3, 4, -1, -2, -3, -4])
    }

    @Test func reversedColumnOrderPutsTheFirstDigitLast() throws {
        // One row, columns over modes (2, 3) in two cores: U[0, j] = G1[j_1] · G2[j_2]. Reversed:
        // j = j_2 · 2 + j_1.
        let g1 = StoredTensor([1, 10], shape: [1, 1, 2, 1])
        let g2 = StoredTensor([1, 2, 3], shape: [1, 1, 3, 1])
        for (order, expected) in [(DigitOrder.forward, [1.0, 2, 3, 10, 20, 30]), (.reversed, [1, 10, 2, 20, 3, 30])] {
            let m = AdapterModule(name: "t", outFeatures: 1, inFeatures: 6, scale: 1,
                                  update: .tensorTrain(TensorTrain(cores: [g1, g2], columnOrder: order)))
            let a = Adapter(modules: [m])
            #expect(try DenseDelta.of(m, in: a).storage == expected, "\(order)")
            let f = try #require(try LowRankForm.of(m, in: a))
            #expect(f.dense.storage == expected, "\(order) via factors")
        }
    }
}
