import TLoRAIO
import TLoRAModel

/// lanl/TTLoRAMoE's TT-LoRA (`TTLoRALinearWrapper_Contraction`): per module the 3-D cores
/// `<module>.tt_cores.<k>` of shape `r_{k−1} × n_k × r_k`, the first `p` over the input features,
/// the rest over the output features, and `y = W x + alpha · ΔW x`.
///
/// Their `tensorized_multiplication` views `x` as `[m_p, …, m_1]` (`m_factors[::-1]`) and contracts
/// core 0 with the LAST (fastest) axis, so input digit `j_1` is the least significant:
/// `j = (…(j_p · n_{p−1} + j_{p−1})…) · n_1 + j_1`; output cores append their axes, so `o_1` is the
/// most significant. Hence `ΔW[o, j] = alpha · G_1[0, j_1, :] ⋯ G_p[:, j_p, :] · H_1[:, o_1, :] ⋯ H_q[:, o_q, 0]`,
/// which is our tensor train with the column cores first (`[r, 1, n, r']`), then the row cores
/// (`[r, m, 1, r']`), column digits `reversed` and row digits `forward`. The cores keep their bytes
/// (a reshape only). Where the input modes end follows from the base weight's `in`.
///
/// `TTLoRALinearWrapper_Reconstruction` saves the same names but means
/// `ΔW = alpha · reshape(G_1 ⋯ G_d, [out, in])` (row-major over the modes in order): the first cores,
/// whose modes multiply to `out`, are row cores and the rest column cores, both digit orders
/// `forward`. Which wrapper wrote a file is not in it; when the modes split both ways the reader
/// needs `--ttlora-layout` rather than guess.
enum TTLoRAReader {
    /// The `p` such that `modes[..<p]` multiply to `first` and `modes[p...]` to `second`, if any.
    static func split(_ modes: [Int], first: Int, second: Int) -> Int? {
        var product = 1
        for (k, n) in modes.enumerated() {
            guard let p = CheckedSize.multiply(product, n) else { return nil }
            product = p
            if product == first { return k + 1 < modes.count && CheckedSize.product(Array(modes[(k + 1)...])) == second ? k + 1 : nil }
            if product > first { return nil }
        }
        return nil
    }

    static func adapter(_ tensors: [(name: String, tensor: StoredTensor)], path: String, options: ResearchOptions) throws -> Adapter {
        let alpha = try ResearchStateDict.alpha(options, .ttLoRA, path: path, hint: "TTLoRAMoE's config[\"alpha\"]")
        var cores: [String: [Int: StoredTensor]] = [:]
        var order: [String] = []
        for (key, t) in tensors {
            guard let (stem, k) = ResearchStateDict.indexed(key, marker: ".tt_cores.") else {
                throw InteropError(.unexpectedTensor, path, "unexpected tensor \(key) in a TT-LoRA state dict (only <module>.tt_cores.<k> belong to the adapter)")
            }
            let module = try ResearchStateDict.moduleName(stem, options: options, path: path)
            if cores[module] == nil { order.append(module) }
            guard cores[module, default: [:]][k] == nil else { throw InteropError(.unexpectedTensor, path, "\(key) appears twice") }
            cores[module, default: [:]][k] = t
        }
        var modules: [AdapterModule] = []
        for name in order {
            let list = try ResearchStateDict.ordered(cores[name] ?? [:], module: name, what: "TT cores", path: path)
            var previous = 1
            for (k, c) in list.enumerated() {
                guard c.shape.count == 3, c.shape.allSatisfy({ $0 > 0 }) else {
                    throw InteropError(.shapeMismatch, path, "module \(name): core \(k) has shape \(c.shape), but TT-LoRA cores are 3-D [r, n, r'] with no empty dimension")
                }
                guard c.shape[0] == previous else {
                    throw InteropError(.shapeMismatch, path, "module \(name): core \(k) starts with rank \(c.shape[0]) but core \(k - 1) ends with rank \(previous)")
                }
                previous = c.shape[2]
                try ResearchStateDict.checkFinite(c, "module \(name): core \(k)", path: path)
            }
            guard list.first?.shape[0] == 1, previous == 1 else {
                throw InteropError(.shapeMismatch, path, "module \(name): the train must start and end with rank 1, got \(list.first?.shape[0] ?? 0) and \(previous)")
            }
            let shape = try ResearchStateDict.baseShape(name, .ttLoRA, options: options, path: path)
            let (out, inn) = (shape[0], shape[1])
            let modes = list.map { $0.shape[1] }
            let contraction = split(modes, first: inn, second: out), reconstruction = split(modes, first: out, second: inn)
            let layout: TTLoRALayout
            switch (options.ttLoRALayout, contraction, reconstruction) {
            case (.contraction?, .some, _), (nil, .some, nil): layout = .contraction
            case (.reconstruction?, _, .some), (nil, nil, .some): layout = .reconstruction
            case (nil, .some, .some):
                throw InteropError(.needsOption, path, "module \(name): TT modes \(modes) fit both TTLoRAMoE wrappers for the \(out)×\(inn) weight; give --ttlora-layout contraction (TTLoRALinearWrapper_Contraction) or reconstruction (TTLoRALinearWrapper_Reconstruction)")
            default:
                let wanted = options.ttLoRALayout.map { " as --ttlora-layout \($0.rawValue) says" } ?? ""
                throw InteropError(.shapeMismatch, path, "module \(name): TT modes \(modes) do not split into input modes multiplying to \(inn) then output modes multiplying to \(out)\(wanted) (the base's weight is \(out)×\(inn))")
            }
            let ours: [StoredTensor]
            let train: TensorTrain
            switch layout {
            case .contraction:
                let p = contraction!  // safe: chosen only when it exists
                ours = list.enumerated().map { k, c in
                    k < p ? c.reshaped([c.shape[0], 1, c.shape[1], c.shape[2]]) : c.reshaped([c.shape[0], c.shape[1], 1, c.shape[2]])
                }
                train = TensorTrain(cores: ours, rowOrder: .forward, columnOrder: .reversed)
            case .reconstruction:
                let p = reconstruction!  // safe: chosen only when it exists
                ours = list.enumerated().map { k, c in
                    k < p ? c.reshaped([c.shape[0], c.shape[1], 1, c.shape[2]]) : c.reshaped([c.shape[0], 1, c.shape[1], c.shape[2]])
                }
                train = TensorTrain(cores: ours)
            }
            modules.append(AdapterModule(name: name, outFeatures: out, inFeatures: inn, scale: alpha, update: .tensorTrain(train),
                                         attributes: ["ttlora.layout": layout.rawValue,
                                                      "ttlora.input_cores": String(layout == .contraction ? contraction! : modes.count - reconstruction!)]))
        }
        var metadata = AdapterMetadata()
        metadata["ttlora.alpha"] = "\(alpha)"
        return Adapter(metadata: metadata, modules: modules)
    }
}
