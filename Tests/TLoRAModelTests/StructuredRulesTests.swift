import Testing
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// The rules of the structured forms (docs/FORMAT.md §2.3, forms 6–11, §2.3.1, §2.3.5, §2.4.1).
@Suite struct StructuredRulesTests {
    static let t = AdapterRulesTests.tensor
    static func module(_ update: ModuleUpdate, out: Int = 12, in inn: Int = 8, scale: Double = 1, kernel: [Int] = [],
                       dora: StoredTensor? = nil, axis: FeatureAxis = .out, bias: StoredTensor? = nil) -> AdapterModule {
        AdapterModule(name: "m", outFeatures: out, inFeatures: inn, scale: scale, update: update, doraMagnitude: dora, doraAxis: axis,
                      kernel: kernel, biasDelta: bias)
    }

    static func rejected(_ m: AdapterModule, _ problem: String, projections: [ProjectionPair] = [], code: ModelError.Code = .shapeMismatch,
                         sourceLocation: SourceLocation = #_sourceLocation) {
        AdapterRulesTests.expectRejected(Adapter(modules: [m], projections: projections), subject: "m", problem: problem, code: code,
                                         sourceLocation: sourceLocation)
    }

    @Test(arguments: DType.allCases)
    func theStructuredSampleIsValid(dtype: DType) throws {
        try SampleAdapters.structured(seed: 3, dtype: dtype).validate()
    }

    @Test func kroneckerFactorsMustMultiplyToTheLayer() {
        let kron = ModuleUpdate.kronecker(Kronecker(w1: .full(Self.t([3, 2])), w2: .lowRank(a: Self.t([2, 4]), b: Self.t([4, 2]))))
        Self.rejected(Self.module(kron, out: 12, in: 9), "W1 (3×2) ⊗ W2 (4×4) is not 12×9")
        let chain = ModuleUpdate.kronecker(Kronecker(w1: .full(Self.t([3, 2])), w2: .lowRank(a: Self.t([2, 4]), b: Self.t([4, 3]))))
        Self.rejected(Self.module(chain), "Kronecker factor W2: [4, 3] · [2, 4] do not chain (rank 3 vs 2)")
        let tucker1 = ModuleUpdate.kronecker(Kronecker(w1: .tucker(TuckerFactors(core: Self.t([1, 1, 1, 1]), a: Self.t([1, 2]), b: Self.t([3, 1]))),
                                                       w2: .full(Self.t([4, 4]))))
        Self.rejected(Self.module(tucker1), "the first Kronecker factor cannot carry a Tucker core", code: .invalidForm)
        // The kernel belongs to W2, whose columns must be whole channels of it: 4 × 3 columns, kernel 4.
        let conv = ModuleUpdate.kronecker(Kronecker(w1: .full(Self.t([2, 4])), w2: .full(Self.t([3, 3]))))
        Self.rejected(Self.module(conv, out: 6, in: 12, kernel: [4]), "W2 has 3 columns, not a multiple of the kernel's 4 positions")
    }

    @Test func hadamardFactorsMustBothBeTheLayer() throws {
        let h = ModuleUpdate.hadamard(Hadamard(p1: .lowRank(a: Self.t([2, 8]), b: Self.t([12, 2])), p2: .lowRank(a: Self.t([2, 7]), b: Self.t([12, 2]))))
        Self.rejected(Self.module(h), "Hadamard factor 2 is 12×7 but ΔW is 12×8")
        let full = ModuleUpdate.hadamard(Hadamard(p1: .full(Self.t([12, 8])), p2: .lowRank(a: Self.t([2, 8]), b: Self.t([12, 2]))))
        Self.rejected(Self.module(full), "Hadamard factor 1 must be low-rank or Tucker", code: .invalidForm)
        // LoHa's factors are both low-rank or both Tucker (form 8): a mixed pair is refused either way round.
        let tucker = FactorMatrix.tucker(TuckerFactors(core: Self.t([2, 2, 3]), a: Self.t([2, 4]), b: Self.t([6, 2])))
        let lowRank = FactorMatrix.lowRank(a: Self.t([2, 12]), b: Self.t([6, 2]))
        Self.rejected(Self.module(.hadamard(Hadamard(p1: tucker, p2: lowRank)), out: 6, in: 12, kernel: [3]),
                      "the Hadamard factors must have one form, got tucker and low_rank")
        Self.rejected(Self.module(.hadamard(Hadamard(p1: lowRank, p2: tucker)), out: 6, in: 12, kernel: [3]),
                      "the Hadamard factors must have one form, got low_rank and tucker")
        try Adapter(modules: [Self.module(.hadamard(Hadamard(p1: tucker, p2: tucker)), out: 6, in: 12, kernel: [3])]).validate()
    }

    /// A Tucker factor's kernel positions are the layer's (§2.3.1): a linear layer has none, so a
    /// `[r1, r2, 1]` core there is refused rather than read as a one-position kernel.
    @Test func tuckerFactorsNeedAConvolution() throws {
        let tucker = FactorMatrix.tucker(TuckerFactors(core: Self.t([2, 2, 1]), a: Self.t([2, 8]), b: Self.t([12, 2])))
        Self.rejected(Self.module(.hadamard(Hadamard(p1: tucker, p2: tucker))), "Hadamard factor 1: a Tucker core needs a convolution")
        let kron = ModuleUpdate.kronecker(Kronecker(w1: .full(Self.t([3, 2])),
                                                    w2: .tucker(TuckerFactors(core: Self.t([2, 2, 1]), a: Self.t([2, 4]), b: Self.t([4, 2])))))
        Self.rejected(Self.module(kron), "Kronecker factor W2: a Tucker core needs a convolution")
        // The same factors on a 1×1 convolution (kernel [1]) are valid.
        try Adapter(modules: [Self.module(.hadamard(Hadamard(p1: tucker, p2: tucker)), kernel: [1])]).validate()
        try Adapter(modules: [Self.module(kron, kernel: [1])]).validate()
    }

    @Test func tuckerCoresMatchTheirFactorsAndTheKernel() {
        let ok = TuckerFactors(core: Self.t([2, 3, 3, 3]), a: Self.t([3, 4]), b: Self.t([6, 2]))
        Self.rejected(Self.module(.convTucker(ok), out: 6, in: 36), "needs a convolution", code: .invalidForm)
        let wrongKernel = TuckerFactors(core: Self.t([2, 3, 1, 3]), a: Self.t([3, 4]), b: Self.t([6, 2]))
        Self.rejected(Self.module(.convTucker(wrongKernel), out: 6, in: 36, kernel: [3, 3]), "does not match the layer's 9 kernel positions")
        let wrongRank = TuckerFactors(core: Self.t([2, 3, 3, 3]), a: Self.t([2, 4]), b: Self.t([6, 2]))
        Self.rejected(Self.module(.convTucker(wrongRank), out: 6, in: 36, kernel: [3, 3]), "do not match the core")
        Self.rejected(Self.module(.convTucker(ok), out: 6, in: 35, kernel: [3, 3]), "35 columns are not whole input channels of a 3×3 kernel")
    }

    @Test func diagonalVeRAAndIA3Shapes() {
        Self.rejected(Self.module(.diagonalLowRank(a: Self.t([4, 8]), b: Self.t([12, 4]), e: Self.t([3]))), "the diagonal E has shape [3] but must be [4]")
        let pair = ProjectionPair(name: "p", a: Self.t([4, 6]), b: Self.t([16, 4]))
        let vera = ModuleUpdate.vera(VeRAUpdate(projections: "p", lambdaB: Self.t([12]), lambdaD: Self.t([4])))
        Self.rejected(Self.module(vera), "are smaller than the 12×8 layer", projections: [pair])
        Self.rejected(Self.module(vera), "refers to projections p, which do not exist", code: .unknownReference)
        let wrongRank = ModuleUpdate.vera(VeRAUpdate(projections: "p", lambdaB: Self.t([12]), lambdaD: Self.t([3])))
        Self.rejected(Self.module(wrongRank), "λ_d has shape [3] but the projections p have rank 4",
                      projections: [ProjectionPair(name: "p", a: Self.t([4, 8]), b: Self.t([12, 4]))])
        let ia3 = ModuleUpdate.featureScale(FeatureScale(vector: Self.t([12]), axis: .out))
        Self.rejected(Self.module(ia3, scale: 2), "an IA³ rescaling has no scale", code: .invalidValue)
        Self.rejected(Self.module(.featureScale(FeatureScale(vector: Self.t([8]), axis: .out))), "the IA³ vector has shape [8] but must be [12]")
        Self.rejected(Self.module(.featureScale(FeatureScale(vector: Self.t([24]), axis: .in)), in: 24, kernel: [3]), "must be [8] (input channels)")
    }

    @Test func doraOnEitherAxisAndBiasShapes() {
        let lr = ModuleUpdate.lowRank(a: Self.t([2, 36]), b: Self.t([6, 2]))
        Self.rejected(Self.module(lr, out: 6, in: 36, kernel: [3, 3], dora: Self.t([36]), axis: .in), "must be [4] (one per input channel)")
        Self.rejected(Self.module(lr, out: 6, in: 36, kernel: [3, 3], dora: Self.t([4])), "must be [6] (one per output feature)")
        Self.rejected(Self.module(lr, out: 6, in: 36, kernel: [3, 3], axis: .in), "DoRA axis or epsilon without a DoRA magnitude", code: .invalidForm)
        Self.rejected(Self.module(lr, out: 6, in: 36, kernel: [3, 3], bias: Self.t([36])), "the bias change has shape [36] but must be [6]")
        var transposed = Self.module(lr, out: 6, in: 36, kernel: [3, 3])
        transposed.layout = .inOut
        Self.rejected(transposed, "a convolution's weight is stored out × in × kernel")
    }
}
