import TLoRAIO
import TLoRAModel

/// jqi41/TT2LoRA's TensorGuide (`TTPostNN`): per module a TT-matrix generator
/// `<module>.tt_layer.tt_cores.<k>` (4-D, `r_{k−1} × n_k × m_k × r_k`, `n` over the latent, `m` over
/// the generated vector) and the fixed buffer `<module>.z_latent` (`1 × N`). `TensorTrainLayer`
/// views `z` as `(n_1, …, n_d)` and the output as `(m_1, …, m_d)`, both row-major; `TTPostNN` splits
/// the generated vector into `W1` (first `in · r` values, `in × r`) and `W2` (`r × out`) and computes
/// `scale · x · W1 · W2`. So `ΔW = scale · W2ᵀ · W1ᵀ`: our `joint_train` update with the cores and
/// latent as they are, and `r = L / (in + out)` from the base weight's shape.
///
/// `TensorTrainLayer`'s einsum sums over every rank index, the outer two included, so a train
/// whose first core starts (or last core ends) with a rank other than 1 means the sum over that
/// boundary index: the reader folds it into the end core (`Σ_a G_1[a, …]`, in f64, stored as f64 so
/// the fold adds no rounding) and the train is then an ordinary one with `r_0 = r_d = 1`.
enum TensorGuideReader {
    /// `core` summed over its first (`first`) and/or last (`last`) rank index, as f64.
    static func foldingBoundaries(_ core: StoredTensor, first: Bool, last: Bool) -> StoredTensor {
        let (r0, n, m, r1) = (core.shape[0], core.shape[1], core.shape[2], core.shape[3])
        let v = core.doubles()
        let (o0, o1) = (first ? 1 : r0, last ? 1 : r1)
        var out = [Double](repeating: 0, count: o0 * n * m * o1)
        for a in 0..<r0 {
            for i in 0..<(n * m) {
                for b in 0..<r1 {
                    out[((first ? 0 : a) * n * m + i) * o1 + (last ? 0 : b)] += v[(a * n * m + i) * r1 + b]
                }
            }
        }
        return StoredTensor(out, shape: [o0, n, m, o1], dtype: .f64)
    }

    static func adapter(_ tensors: [(name: String, tensor: StoredTensor)], path: String, options: ResearchOptions) throws -> Adapter {
        let alpha = try ResearchStateDict.alpha(options, .tensorGuide, path: path, hint: "TT2LoRA's TTPostNN scale")
        var cores: [String: [Int: StoredTensor]] = [:]
        var latents: [String: StoredTensor] = [:]
        var order: [String] = []
        for (key, t) in tensors {
            let module: String
            if let (stem, k) = ResearchStateDict.indexed(key, marker: ".tt_layer.tt_cores.") {
                module = try ResearchStateDict.moduleName(stem, options: options, path: path)
                guard cores[module, default: [:]][k] == nil else { throw InteropError(.unexpectedTensor, path, "\(key) appears twice") }
                cores[module, default: [:]][k] = t
            } else if key.hasSuffix(".z_latent") {
                module = try ResearchStateDict.moduleName(String(key.dropLast(".z_latent".count)), options: options, path: path)
                latents[module] = t
            } else {
                throw InteropError(.unexpectedTensor, path, "unexpected tensor \(key) in a TensorGuide state dict (only <module>.tt_layer.tt_cores.<k> and <module>.z_latent belong to the adapter)")
            }
            if !order.contains(module) { order.append(module) }
        }
        var modules: [AdapterModule] = []
        for name in order {
            var list = try ResearchStateDict.ordered(cores[name] ?? [:], module: name, what: "tt_layer cores", path: path)
            guard let z = latents[name] else { throw InteropError(.missingTensor, path, "module \(name) has tt_layer cores but no z_latent") }
            for (k, c) in list.enumerated() {
                guard c.shape.count == 4, c.shape.allSatisfy({ $0 > 0 }) else {
                    throw InteropError(.shapeMismatch, path, "module \(name): core \(k) has shape \(c.shape), but TensorGuide cores are 4-D [r, n, m, r'] with no empty dimension")
                }
                if k > 0, c.shape[0] != list[k - 1].shape[3] {
                    throw InteropError(.shapeMismatch, path, "module \(name): core \(k) starts with rank \(c.shape[0]) but core \(k - 1) ends with rank \(list[k - 1].shape[3])")
                }
                try ResearchStateDict.checkFinite(c, "module \(name): core \(k)", path: path)
            }
            try ResearchStateDict.checkFinite(z, "module \(name): z_latent", path: path)
            var attributes: [String: String] = [:]
            if list[0].shape[0] != 1 || list[list.count - 1].shape[3] != 1 {
                attributes["tensorguide.boundary_ranks"] = "\(list[0].shape[0]),\(list[list.count - 1].shape[3])"
                if list.count == 1 {
                    list[0] = foldingBoundaries(list[0], first: true, last: true)
                } else {
                    list[0] = foldingBoundaries(list[0], first: list[0].shape[0] != 1, last: false)
                    list[list.count - 1] = foldingBoundaries(list[list.count - 1], first: false, last: list[list.count - 1].shape[3] != 1)
                }
            }
            let shape = try ResearchStateDict.baseShape(name, .tensorGuide, options: options, path: path)
            let (out, inn) = (shape[0], shape[1])
            guard let generated = CheckedSize.product(list.map { $0.shape[2] }), let sides = CheckedSize.add(inn, out) else {
                throw InteropError(.shapeMismatch, path, "module \(name): generated mode sizes overflow")
            }
            guard generated % sides == 0, generated > 0 else {
                throw InteropError(.shapeMismatch, path, "module \(name): the generator's modes multiply to \(generated), which is not r × (in + out) = r × \(sides) for the base's \(out)×\(inn) weight")
            }
            modules.append(AdapterModule(name: name, outFeatures: out, inFeatures: inn, scale: alpha,
                                         update: .jointTrain(JointTrain(cores: list, latent: z, rank: generated / sides)), attributes: attributes))
        }
        var metadata = AdapterMetadata()
        metadata["tensorguide.scale"] = "\(alpha)"
        return Adapter(metadata: metadata, modules: modules)
    }
}
