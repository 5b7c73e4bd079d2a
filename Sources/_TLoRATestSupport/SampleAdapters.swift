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
