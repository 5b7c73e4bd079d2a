import TLoRAIO
import TLoRAModel

/// Writes an adapter as an MLX-LM directory (`adapters.safetensors` + `adapter_config.json`) that
/// mlx-lm 0.32's `load_adapters` loads (`mlx_lm.generate --adapter-path`, `mlx_lm.fuse`).
///
/// mlx-lm has one rank and one scale for the whole adapter (`lora_parameters.rank`/`scale`) and
/// checks each tensor's shape against the layers it builds from them. So modules of a smaller rank
/// are zero-padded to the largest rank (exact: the extra rows of `A` and columns of `B` are zero),
/// and a module whose scale differs from the common one gets the ratio folded into `B` (rounded once
/// to `B`'s dtype; reported). Conventions as `MLXAdapter` reads them: `lora_a = Aᵀ` (`in × r`),
/// `lora_b = Bᵀ` (`r × out`), DoRA's `m` (`out`).
///
/// `num_layers` is -1 (every layer, as mlx-lm's own `--num-layers -1`) and `keys` lists each module's
/// path inside its layer: mlx-lm then wraps those projections in every layer, and the ones the
/// adapter does not have keep mlx-lm's initialization (`lora_b` zero, DoRA `m = ‖W‖_row`), which adds
/// nothing.
public enum MLXWriter {
    public struct Report: Sendable {
        public var rank: Int
        public var scale: Double
        public var fineTuneType: String
        /// Modules zero-padded to `rank`.
        public var paddedModules: [String]
        /// Modules whose scale was folded into `B`.
        public var bakedModules: [String]
    }

    public static func write(_ adapter: Adapter, to directory: String, overwrite: Bool) throws -> Report {
        let (config, tensors, report) = try layout(adapter, path: directory)
        let out = try AtomicDirectoryWriter(destination: directory, overwrite: overwrite)
        let configFile = try AtomicFileWriter(destination: out.path(for: MLXAdapter.configName), overwrite: false)
        try configFile.write(JSONWriter.bytes(.object(config), indent: 4))
        try configFile.commit()
        try SafetensorsWriter.write(tensors, to: out.path(for: MLXAdapter.weightsName), overwrite: false)
        try out.commit()
        return report
    }

    /// The config, the tensors (in module order) and what had to be adapted.
    public static func layout(_ adapter: Adapter, path: String) throws -> (JSONObject, [(name: String, tensor: StoredTensor)], Report) {
        func fail(_ p: String) -> InteropError { InteropError(.unsupported, path, p) }
        func fail(_ code: InteropError.Code, _ p: String) -> InteropError { InteropError(code, path, p) }
        guard adapter.replacedTensors.isEmpty else {
            throw fail("the adapter replaces whole tensors (\(adapter.replacedTensors.map(\.target).prefix(3).joined(separator: ", "))); an MLX-LM adapter holds only lora_a, lora_b and m")
        }
        guard !adapter.modules.isEmpty else { throw fail("the adapter has no modules") }
        var factors: [(module: AdapterModule, a: StoredTensor, b: StoredTensor)] = []
        for m in adapter.modules {
            guard case .lowRank(let a, let b) = m.update else { throw fail("module \(m.name) is not low-rank (convert with to-lora first)") }
            factors.append((m, a, b))
        }
        let dora = adapter.modules.filter { $0.doraMagnitude != nil }
        if !dora.isEmpty {
            guard dora.count == adapter.modules.count else {
                throw fail("mlx-lm's fine_tune_type applies DoRA to every adapted layer, but only \(dora.count) of \(adapter.modules.count) modules are DoRA (e.g. not \(adapter.modules.first { $0.doraMagnitude == nil }?.name ?? ""))")
            }
            if let e = adapter.modules.first(where: { $0.kind == .embedding }) {
                throw fail("module \(e.name): DoRA on an embedding has no MLX-LM file form tlora writes")
            }
        }
        let rank = factors.map { $0.a.shape[0] }.max() ?? 1
        // The most common scale keeps most factors bit for bit.
        var votes: [Double: Int] = [:]
        for f in factors { votes[f.module.scale, default: 0] += 1 }
        let scale = votes.max { ($0.value, -$0.key) < ($1.value, -$1.key) }?.key ?? 1
        var padded: [String] = [], baked: [String] = []
        var tensors: [(name: String, tensor: StoredTensor)] = []
        var keys: [String] = []
        for (m, a0, b0) in factors {
            var a = a0, b = b0
            if m.scale != scale {
                let ratio = m.scale / scale
                b = StoredTensor(b.doubles().map { $0 * ratio }, shape: b.shape, dtype: b.dtype)
                baked.append(m.name)
            }
            let r = a.shape[0]
            if r < rank {
                (a, b) = StoredTensor.zeroPaddingRank(a: a, b: b, to: rank)
                padded.append(m.name)
            }
            tensors.append((m.name + ".lora_a", mlxDType(a.transposed())))
            tensors.append((m.name + ".lora_b", mlxDType(b.transposed())))
            if let mag = m.doraMagnitude { tensors.append((m.name + ".m", mlxDType(mag))) }
            let key = layerKey(m.name)
            if !keys.contains(key) { keys.append(key) }
        }
        let type = dora.isEmpty ? "lora" : "dora"
        var params = JSONObject()
        params["rank"] = JSONValue(rank)
        params["dropout"] = JSONValue(0.0)
        params["scale"] = JSONValue(scale)
        params["keys"] = JSONValue(keys.sorted())
        // mlx-lm's save_config writes the top-level keys sorted, indented by 4.
        var config = JSONObject()
        config["fine_tune_type"] = JSONValue(type)
        config["lora_parameters"] = .object(params)
        if let model = adapter.metadata.baseModel { config["model"] = JSONValue(model) }
        config["num_layers"] = JSONValue(-1)
        return (config, tensors, Report(rank: rank, scale: scale, fineTuneType: type, paddedModules: padded, bakedModules: baked))
    }

    /// `model.layers.3.self_attn.q_proj` → `self_attn.q_proj` (mlx-lm matches keys inside each of
    /// `model.layers`); a module outside the layers (`lm_head`) keeps its full path, which mlx-lm
    /// matches against the whole model.
    static func layerKey(_ module: String) -> String {
        let parts = module.split(separator: ".", omittingEmptySubsequences: false)
        for i in parts.indices.dropLast(2) where ["layers", "h", "layer", "blocks"].contains(parts[i]) && Int(parts[i + 1]) != nil {
            return parts[(i + 2)...].joined(separator: ".")
        }
        return module
    }

    /// MLX computes in f32, f16 or bf16: f64 factors are rounded to f32.
    static func mlxDType(_ t: StoredTensor) -> StoredTensor {
        t.dtype == .f64 ? StoredTensor(t.doubles(), shape: t.shape, dtype: .f32) : t
    }
}
