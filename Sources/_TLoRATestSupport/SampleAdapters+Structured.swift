import TLoRAModel
import TLoRANumerics

extension SampleAdapters {
    /// One module of each structured form (docs/FORMAT.md §2.3, forms 6–11) with every optional part
    /// somewhere: convolutions (2-D and 1-D kernels), DoRA on both axes with an epsilon, a bias change,
    /// Tucker factors inside Kronecker and Hadamard products, a rank-0 AdaLoRA module, two VeRA
    /// modules sharing one projection pair, IA³ on both axes. All tensors in `dtype`.
    package static func structured(seed: UInt64, dtype: DType) -> Adapter {
        var g = SeededGenerator(seed: seed)
        func t(_ shape: [Int], _ scale: Double = 0.3) -> StoredTensor { tensor(shape, dtype: dtype, scale: scale, using: &g) }
        func ones(_ n: Int) -> StoredTensor { StoredTensor((0..<n).map { _ in 1 + g.gaussian() * 0.1 }, shape: [n], dtype: dtype) }
        var modules: [AdapterModule] = []
        modules.append(AdapterModule(name: "conv.locon", outFeatures: 6, inFeatures: 4 * 9, scale: 0.5,
                                     update: .convTucker(TuckerFactors(core: t([2, 3, 3, 3]), a: t([3, 4]), b: t([6, 2]))), kernel: [3, 3]))
        modules.append(AdapterModule(name: "layers.0.lokr", outFeatures: 12, inFeatures: 8, scale: 2,
                                     update: .kronecker(Kronecker(w1: .full(t([3, 2])), w2: .lowRank(a: t([2, 4]), b: t([4, 2])))),
                                     doraMagnitude: ones(12), attributes: ["peft.r": "2"]))
        modules.append(AdapterModule(name: "conv.lokr", outFeatures: 6, inFeatures: 4 * 9, scale: 1,
                                     update: .kronecker(Kronecker(w1: .lowRank(a: t([1, 2]), b: t([2, 1])),
                                                                  w2: .tucker(TuckerFactors(core: t([2, 2, 3, 3]), a: t([2, 2]), b: t([3, 2]))))),
                                     doraMagnitude: ones(4), doraAxis: .in, doraEpsilon: Double(Float.ulpOfOne), kernel: [3, 3]))
        modules.append(AdapterModule(name: "layers.0.loha", outFeatures: 12, inFeatures: 8, scale: 0.25,
                                     update: .hadamard(Hadamard(p1: .lowRank(a: t([3, 8]), b: t([12, 3])), p2: .lowRank(a: t([2, 8]), b: t([12, 2])))),
                                     biasDelta: t([12])))
        modules.append(AdapterModule(name: "conv.loha", outFeatures: 5, inFeatures: 3 * 9, scale: 1.5,
                                     update: .hadamard(Hadamard(p1: .tucker(TuckerFactors(core: t([2, 2, 3, 3]), a: t([2, 3]), b: t([5, 2]))),
                                                                p2: .tucker(TuckerFactors(core: t([2, 2, 3, 3]), a: t([2, 3]), b: t([5, 2]))))),
                                     kernel: [3, 3]))
        modules.append(AdapterModule(name: "layers.0.adalora", outFeatures: 12, inFeatures: 8, scale: 1.9999,
                                     update: .diagonalLowRank(a: t([4, 8]), b: t([12, 4]), e: t([4]))))
        modules.append(AdapterModule(name: "layers.1.adalora", outFeatures: 12, inFeatures: 8, scale: 1.9999,
                                     update: .diagonalLowRank(a: t([0, 8]), b: t([12, 0]), e: t([0]))))
        let pair = ProjectionPair(name: "vera", a: t([4, 16]), b: t([16, 4]))
        modules.append(AdapterModule(name: "layers.0.vera_q", outFeatures: 12, inFeatures: 8, scale: 1,
                                     update: .vera(VeRAUpdate(projections: "vera", lambdaB: t([12]), lambdaD: t([4])))))
        modules.append(AdapterModule(name: "layers.0.vera_up", outFeatures: 16, inFeatures: 16, scale: 1,
                                     update: .vera(VeRAUpdate(projections: "vera", lambdaB: t([16]), lambdaD: t([4])))))
        modules.append(AdapterModule(name: "layers.0.ia3_k", outFeatures: 12, inFeatures: 8, scale: 1,
                                     update: .featureScale(FeatureScale(vector: ones(12), axis: .out))))
        modules.append(AdapterModule(name: "conv.ia3", outFeatures: 6, inFeatures: 4 * 9, scale: 1,
                                     update: .featureScale(FeatureScale(vector: ones(4), axis: .in)), kernel: [3, 3]))
        modules.append(AdapterModule(name: "conv1d.full", outFeatures: 4, inFeatures: 2 * 3, scale: 1,
                                     update: .dense(t([4, 6])), kernel: [3], biasDelta: t([4])))
        var metadata = AdapterMetadata()
        metadata.sourceFormat = "test"
        return Adapter(metadata: metadata, modules: modules, projections: [pair])
    }
}
