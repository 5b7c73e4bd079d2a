import TLoRAModel
import TLoRANumerics

/// Small adapters with every kind of update, filled with seeded random values.
package enum SampleAdapters {
    static func tensor(_ shape: [Int], dtype: DType, scale: Double = 0.05, using g: inout SeededGenerator) -> StoredTensor {
        let n = shape.reduce(1, *)
        return StoredTensor((0..<n).map { _ in g.gaussian() * scale }, shape: shape, dtype: dtype)
    }

    /// One module of each update kind (low-rank with DoRA, tensor train, two Tucker slices, dense),
    /// an embedding module and a replaced tensor, all in `dtype`.
    package static func everyKind(seed: UInt64, dtype: DType) -> Adapter {
        var g = SeededGenerator(seed: seed)
        var metadata = AdapterMetadata()
        metadata.sourceFormat = "test"
        metadata.baseModel = "tiny/base"
        metadata["note"] = "ünïcode \"quoted\" \\ value"
        let lowRank = AdapterModule(
            name: "layers.0.q_proj", outFeatures: 12, inFeatures: 8, scale: 2.0,
            update: .lowRank(a: tensor([4, 8], dtype: dtype, using: &g), b: tensor([12, 4], dtype: dtype, using: &g)),
            doraMagnitude: tensor([12], dtype: dtype, scale: 1, using: &g), attributes: ["peft.r": "4"])
        let cores = [tensor([1, 3, 1, 2], dtype: dtype, using: &g), tensor([2, 4, 1, 3], dtype: dtype, using: &g),
                     tensor([3, 1, 2, 2], dtype: dtype, using: &g), tensor([2, 1, 4, 1], dtype: dtype, using: &g)]
        let tt = AdapterModule(name: "layers.0.k_proj", outFeatures: 12, inFeatures: 8, scale: 0.5,
                               update: .tensorTrain(TensorTrain(cores: cores)),
                               conversion: ConversionRecord(method: "tt-svd", maxRelativeError: 0.01, relativeError: 0.0042, sourceParameters: 80))
        let group = TuckerGroup(
            name: "qkv.layers.1", core: tensor([3, 2, 2], dtype: dtype, using: &g),
            factors: [tensor([8, 3], dtype: dtype, using: &g), tensor([12, 2], dtype: dtype, using: &g), tensor([2, 2], dtype: dtype, using: &g)],
            modes: [TuckerMode(role: .column, name: "in"), TuckerMode(role: .row, name: "out"),
                    TuckerMode(role: .member, name: "projection", labels: ["q_proj", "v_proj"])],
            conversion: ConversionRecord(method: "st-hosvd", maxRelativeError: 0.05, relativeError: 0.03))
        let s0 = AdapterModule(name: "layers.1.q_proj", outFeatures: 12, inFeatures: 8, scale: 1, update: .tuckerSlice(group: group.name, index: [0]))
        let s1 = AdapterModule(name: "layers.1.v_proj", outFeatures: 12, inFeatures: 8, scale: 1, update: .tuckerSlice(group: group.name, index: [1]))
        let dense = AdapterModule(name: "layers.1.o_proj", outFeatures: 8, inFeatures: 12, scale: 1,
                                  update: .dense(tensor([8, 12], dtype: dtype, using: &g)))
        let embedding = AdapterModule(name: "embed_tokens", kind: .embedding, layout: .inOut, outFeatures: 8, inFeatures: 32, scale: 4,
                                      update: .lowRank(a: tensor([2, 32], dtype: dtype, using: &g), b: tensor([8, 2], dtype: dtype, using: &g)))
        let replaced = ReplacedTensor(target: "lm_head.weight", value: tensor([32, 8], dtype: dtype, using: &g))
        return Adapter(metadata: metadata, modules: [lowRank, tt, s0, s1, dense, embedding], tuckerGroups: [group], replacedTensors: [replaced])
    }

    /// A plain LoRA adapter: `count` modules of `out × in` at rank `r`.
    package static func lora(seed: UInt64, modules count: Int, out: Int, in inFeatures: Int, rank r: Int, dtype: DType = .f32) -> Adapter {
        var g = SeededGenerator(seed: seed)
        let modules = (0..<count).map { i in
            AdapterModule(name: "model.layers.\(i).self_attn.q_proj", outFeatures: out, inFeatures: inFeatures, scale: 2,
                          update: .lowRank(a: tensor([r, inFeatures], dtype: dtype, using: &g), b: tensor([out, r], dtype: dtype, using: &g)))
        }
        return Adapter(metadata: AdapterMetadata([("source_format", "test")]), modules: modules)
    }
}

extension SampleAdapters {
    /// LoRA adapters of one base whose updates share subspaces, as a bank's members do: in planted
    /// group `g` (member j is in group `j % groups`), module `i` of member `j` has
    /// `B = U_gi · X_j + noise · N`, `A = Y_j · V_giᵀ + noise · N` with `U_gi` (`out × shared`) and `V_gi`
    /// (`in × shared`) common to the group. Scales differ by member (`2^(j mod 7 − 3)`) so that norms
    /// spread over two orders of magnitude.
    public static func bankMembers(seed: UInt64, members: Int, modules: Int, out: Int, in inFeatures: Int, rank: Int,
                                   shared: Int, noise: Double, groups: Int = 1) -> [Adapter] {
        var g = SeededGenerator(seed: seed)
        let bases = (0..<groups).map { _ in
            (0..<modules).map { _ in
                (RandomTensors.gaussianMatrix(rows: out, cols: shared, using: &g, as: Double.self),
                 RandomTensors.gaussianMatrix(rows: inFeatures, cols: shared, using: &g, as: Double.self))
            }
        }
        return (0..<members).map { j in
            let modules = (0..<modules).map { i -> AdapterModule in
                let (u, v) = bases[j % groups][i]
                let x = RandomTensors.gaussianMatrix(rows: shared, cols: rank, using: &g, as: Double.self)
                let y = RandomTensors.gaussianMatrix(rows: rank, cols: shared, using: &g, as: Double.self)
                var b = matmul(u, x), a = matmul(y, v, transposeB: true)
                for k in b.storage.indices { b.storage[k] = b.storage[k] * 0.01 + noise * 0.01 * g.gaussian() }
                for k in a.storage.indices { a.storage[k] = a.storage[k] * 0.01 + noise * 0.01 * g.gaussian() }
                let scale = Double(sign: .plus, exponent: j % 7 - 3, significand: 1)
                return AdapterModule(name: "model.layers.\(i).self_attn.q_proj", outFeatures: out, inFeatures: inFeatures, scale: scale,
                                     update: .lowRank(a: StoredTensor(a, dtype: .f32), b: StoredTensor(b, dtype: .f32)))
            }
            return Adapter(metadata: AdapterMetadata([("source_format", "test"), ("base_model", "tiny/base")]), modules: modules)
        }
    }
}

extension SampleAdapters {
    /// A small adapter bank with random values (not orthonormal bases: the format does not care):
    /// modules `q` (12×8) and `v` (6×8) in two clusters, three members, one with a DoRA magnitude and
    /// one with a replaced tensor.
    public static func bank(seed: UInt64, dtype: DType = .f32) -> AdapterBank {
        var g = SeededGenerator(seed: seed)
        var bases: [BankBasis] = []
        for (cluster, ranks) in [(0, (3, 2)), (1, (2, 2))] {
            bases.append(BankBasis(name: "q@\(cluster)", module: "layers.0.q", cluster: cluster, outBasis: tensor([12, ranks.0], dtype: dtype, using: &g),
                                   inBasis: tensor([8, ranks.1], dtype: dtype, using: &g),
                                   conversion: ConversionRecord(method: "bank", maxRelativeError: 0.05, relativeError: 0.04)))
        }
        bases.append(BankBasis(name: "v@0", module: "layers.0.v", cluster: 0, outBasis: tensor([6, 1], dtype: dtype, using: &g),
                               inBasis: tensor([8, 2], dtype: dtype, using: &g)))
        func module(_ name: String, out: Int, basis: BankBasis, dora: Bool = false) -> BankModule {
            BankModule(name: name, outFeatures: out, inFeatures: 8, scale: 2, basis: basis.name,
                       core: tensor([basis.ranks.out, basis.ranks.in], dtype: dtype, using: &g),
                       doraMagnitude: dora ? tensor([out], dtype: dtype, scale: 1, using: &g) : nil,
                       conversion: ConversionRecord(method: "bank", maxRelativeError: 0.05, relativeError: 0.01, sourceParameters: 40),
                       attributes: ["peft.r": "4"])
        }
        let a = BankMember(name: "task-a", cluster: 0, metadata: AdapterMetadata([("source_format", "peft"), ("note", "ünï")]),
                           modules: [module("layers.0.q", out: 12, basis: bases[0], dora: true), module("layers.0.v", out: 6, basis: bases[2])],
                           sourceBytes: 512)
        let b = BankMember(name: "task-b", cluster: 1, modules: [module("layers.0.q", out: 12, basis: bases[1])],
                           replacedTensors: [ReplacedTensor(target: "head.weight", value: tensor([2, 8], dtype: dtype, using: &g))], sourceBytes: 300)
        let c = BankMember(name: "task-c", cluster: 0, modules: [module("layers.0.v", out: 6, basis: bases[2])])
        return AdapterBank(metadata: AdapterMetadata([("base_model", "tiny/base")]), bases: bases, members: [a, b, c],
                           conversion: ConversionRecord(method: "bank", maxRelativeError: 0.05, relativeError: 0.04))
    }
}
