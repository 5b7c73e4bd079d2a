import TLoRAModel
import TLoRANumerics

/// Makes a low-rank adapter fit what vLLM loads, exactly where it can and with the error stated
/// where it cannot, or refuses with the reasons.
///
/// vLLM's rules, from vllm 0.34.0 (`vllm/lora/peft_helper.py` `PEFTHelper._validate_features`,
/// `validate_legal`; `vllm/config/lora.py` `MaxLoRARanks`; `vllm/lora/lora_model.py`
/// `from_lora_tensors`; `vllm/lora/utils.py` `is_base_embedding_weights`):
/// - the server's `max_lora_rank` is one of 1, 8, 16, 32, 64, 128, 256, 320, 512 and every module's
///   rank must be at most it;
/// - no DoRA (`use_dora`), no `bias` other than `"none"`, no `lora_bias`, no `modules_to_save` other
///   than a classification head (`classifier`, `score`; at most one);
/// - saved base embeddings (`…embed_tokens.base_layer.weight`, `…lm_head.base_layer.weight`) are
///   skipped on load.
///
/// What this does: every module is zero-padded to one rank, the smallest allowed value ≥ the largest
/// rank (exact); one `lora_alpha` serves all modules (a differing scale is folded into `B`), so the
/// config needs no `rank_pattern`/`alpha_pattern`/`use_rslora` and older vLLM versions that ignore
/// them read the same numbers. With the base model given: DoRA modules and replaced weights
/// (`modules_to_save`) become plain LoRA updates of `W' − W` truncated to a rank (the error stated);
/// saved biases and base embeddings equal to the base's are dropped. Without the base, or when a
/// trained bias differs from the base's, the export is refused with every reason.
public enum VLLMTarget {
    /// `vllm/config/lora.py`: `MaxLoRARanks = Literal[1, 8, 16, 32, 64, 128, 256, 320, 512]`.
    public static let allowedRanks = [1, 8, 16, 32, 64, 128, 256, 320, 512]
    /// `PEFTHelper._validate_features`: the only modules_to_save vLLM accepts.
    public static let classificationHeads: Set<String> = ["classifier", "score"]

    /// The base model's tensors by name (nil when the base has none of that name), needed to fold
    /// DoRA and replaced tensors; `path` names the base in messages.
    public struct Base {
        public var path: String
        public var tensor: (String) throws -> StoredTensor?

        public init(path: String, tensor: @escaping (String) throws -> StoredTensor?) {
            self.path = path
            self.tensor = tensor
        }
    }

    public struct Options {
        public var base: Base?
        /// Bound on each folded update's relative error (the rank grows to meet it, up to 512).
        public var maxRelativeError: Double?

        public init(base: Base? = nil, maxRelativeError: Double? = nil) {
            self.base = base
            self.maxRelativeError = maxRelativeError
        }
    }

    public struct Report: Sendable {
        public struct Fold: Sendable {
            public var module: String
            public var what: String
            public var rank: Int
            public var relativeError: Double
        }
        public var rank: Int
        public var scale: Double
        public var padded: [String] = []
        public var baked: [String] = []
        public var folded: [Fold] = []
        public var dropped: [String] = []
    }

    public static func prepare(_ adapter: Adapter, options: Options, path: String) throws -> (Adapter, Report) {
        // Reasons, each with the names it applies to, in first-seen order: one line however many.
        var reasons: [(why: String, names: [String])] = []
        func refuse(_ name: String, _ why: String) {
            if let i = reasons.firstIndex(where: { $0.why == why }) { reasons[i].names.append(name) } else { reasons.append((why, [name])) }
        }
        var modules: [AdapterModule] = []
        var folds: [(module: AdapterModule, delta: Matrix<Double>, what: String)] = []
        var dropped: [String] = []
        var kept: [ReplacedTensor] = []
        let base = options.base
        for m in adapter.modules {
            guard case .lowRank = m.update else { throw ConvertError(.notServable, "\(path): module \(m.name) is not low-rank") }
            // A PEFT lora_bias (what `tlora extract` writes for a changed bias): vLLM refuses any adapter bias.
            guard m.biasDelta == nil else { refuse(m.name, "bias changes (lora_bias; peft_helper.py: \"Adapter bias is not supported\")"); continue }
            guard m.doraMagnitude != nil else { modules.append(m); continue }
            guard let base else {
                refuse(m.name, "DoRA, which vLLM does not load (peft_helper.py: \"vLLM does not yet support DoRA\"); give --base to fold the magnitude into a plain LoRA (lossy, the error is stated)")
                continue
            }
            let w = try baseWeight(base, m.target, layout: m.layout, rows: m.outFeatures, cols: m.inFeatures, path: path)
            folds.append((m, try doraChange(m, adapter: adapter, base: w), "DoRA magnitude"))
        }
        let updated = Set(adapter.modules.map(\.target))
        for r in adapter.replacedTensors {
            let owner = String(r.target.split(separator: ".").dropLast().joined(separator: "."))
            let leaf = owner.split(separator: ".").last.map(String.init) ?? owner
            if classificationHeads.contains(leaf) { kept.append(r); continue }
            let isBias = r.target.hasSuffix(".bias")
            let savedBase = r.sourceName.map { $0.hasSuffix("embed_tokens.base_layer.weight") || $0.hasSuffix("lm_head.base_layer.weight") } ?? false
            guard let base else {
                refuse(r.target, isBias ? "trained biases (peft_helper.py: \"Adapter bias is not supported\"); give --base: a bias equal to the base's is dropped"
                               : savedBase ? "saved base embeddings, which vLLM skips; give --base to check they equal the base's"
                               : "replaced whole (modules_to_save; vLLM accepts only classifier/score); give --base to fold them into LoRA updates (lossy, the error is stated)")
                continue
            }
            guard let w = try base.tensor(r.target) else { refuse(r.target, "not in the base \(base.path)"); continue }
            guard w.shape == r.value.shape else {
                refuse(r.target, "shaped differently in the base"); continue
            }
            if w.doubles() == r.value.doubles() { dropped.append(r.target); continue }
            if isBias || savedBase {
                refuse(r.target, isBias ? "trained biases that differ from the base's (peft_helper.py: \"Adapter bias is not supported\")"
                                        : "saved base embeddings that differ from the base's (vLLM skips them: lora/utils.py is_base_embedding_weights)")
                continue
            }
            guard !updated.contains(r.target), w.shape.count == 2 else {
                refuse(r.target, "both replaced and updated by a module (merge it with `tlora merge` instead)"); continue
            }
            let isEmbedding = leaf == "embed_tokens" || leaf == "wte" || leaf == "word_embeddings"
            let rows = isEmbedding ? w.shape[1] : w.shape[0], cols = isEmbedding ? w.shape[0] : w.shape[1]
            var d = Matrix<Double>(rows: rows, cols: cols)
            let new = r.value.doubles(), old = w.doubles()
            for i in 0..<rows { for j in 0..<cols {
                let k = isEmbedding ? j * rows + i : i * cols + j
                d[i, j] = new[k] - old[k]
            } }
            let module = AdapterModule(name: owner, target: r.target, kind: isEmbedding ? .embedding : .linear, layout: isEmbedding ? .inOut : .outIn,
                                       outFeatures: rows, inFeatures: cols, scale: 1, update: .dense(StoredTensor(d, dtype: .f32)))
            folds.append((module, d, "replaced weight (modules_to_save \(owner))"))
        }
        guard reasons.isEmpty else {
            let parts = reasons.map { r in
                let shown = r.names.prefix(3).joined(separator: ", ") + (r.names.count > 3 ? ", … (\(r.names.count) in all)" : "")
                return "\(shown): \(r.why)"
            }
            throw ConvertError(.notServable, "\(path): cannot be made to fit vLLM: " + parts.joined(separator: "; "))
        }

        // The rank every module will have: allowed, and at least every plain module's rank.
        let plainRank = modules.map(rank).max() ?? 1
        var report = Report(rank: 0, scale: 1)
        for (m, d, what) in folds {
            var target = allowed(atLeast: max(rank(m), 1)) ?? 512
            target = max(target, allowed(atLeast: plainRank) ?? 512)
            let dense = AdapterModule(name: m.name, target: m.target, kind: m.kind, layout: m.layout, outFeatures: m.outFeatures,
                                      inFeatures: m.inFeatures, scale: 1, update: .dense(StoredTensor(d, dtype: .f64)))
            var (lora, line) = try ToLoRA.convert(dense, in: Adapter(modules: [dense]), options: .init(target: ConversionTarget(maxRelativeError: nil, maxRank: target)))
            if let e = options.maxRelativeError, line.relativeError > e {
                // Grow through the allowed ranks until the bound holds.
                guard let fit = allowedRanks.first(where: { $0 > target && (try? ToLoRA.convert(dense, in: Adapter(modules: [dense]), options: .init(target: ConversionTarget(maxRelativeError: e, maxRank: $0))))?.1.relativeError ?? 1 <= e })
                else { throw ConvertError(.notServable, "\(path): module \(m.name): folding its \(what) needs a rank above 512 for relative error \(e) (vLLM's largest max_lora_rank)") }
                (lora, line) = try ToLoRA.convert(dense, in: Adapter(modules: [dense]), options: .init(target: ConversionTarget(maxRelativeError: e, maxRank: fit)))
            }
            lora.doraMagnitude = nil
            lora.attributes = m.attributes
            modules.append(lora)
            report.folded.append(.init(module: m.name, what: what, rank: rank(lora), relativeError: line.relativeError))
        }
        let maxRank = modules.map(rank).max() ?? 1
        guard let uniform = allowed(atLeast: maxRank) else {
            throw ConvertError(.notServable, "\(path): rank \(maxRank) is above 512, vLLM's largest max_lora_rank (vllm/config/lora.py); reduce it with `tlora convert to-lora --max-rank 512`")
        }
        var votes: [Double: Int] = [:]
        for m in modules { votes[m.scale, default: 0] += 1 }
        let scale = votes.max { ($0.value, -$0.key) < ($1.value, -$1.key) }?.key ?? 1
        report.rank = uniform
        report.scale = scale
        report.dropped = dropped
        var out = adapter
        out.modules = try modules.map { m in
            guard case .lowRank(var a, var b) = m.update else { throw ConvertError(.notServable, "\(path): module \(m.name) is not low-rank") }
            if m.scale != scale {
                let ratio = m.scale / scale
                b = StoredTensor(b.doubles().map { $0 * ratio }, shape: b.shape, dtype: b.dtype)
                report.baked.append(m.name)
            }
            if a.shape[0] < uniform {
                (a, b) = StoredTensor.zeroPaddingRank(a: a, b: b, to: uniform)
                report.padded.append(m.name)
            }
            var n = m
            n.update = .lowRank(a: a, b: b)
            n.scale = scale
            n.doraMagnitude = nil
            return n
        }
        out.replacedTensors = kept
        return (out, report)
    }

    /// The smallest allowed rank ≥ r, or nil above 512.
    public static func allowed(atLeast r: Int) -> Int? { allowedRanks.first { $0 >= r } }

    static func rank(_ m: AdapterModule) -> Int {
        if case .lowRank(let a, _) = m.update { return a.shape[0] }
        return 0
    }

    /// The base weight a module updates, in the canonical `out × in` orientation.
    static func baseWeight(_ base: Base, _ target: String, layout: WeightLayout, rows: Int, cols: Int, path: String) throws -> Matrix<Double> {
        guard let t = try base.tensor(target) else { throw ConvertError(.missingBaseTensor, "\(path): \(target) is not in the base \(base.path)") }
        let w = t.matrix()
        let canonical = layout == .outIn ? w : w.transposed()
        guard canonical.rows == rows, canonical.cols == cols else {
            throw ConvertError(.shapeMismatch, "\(path): \(target) in the base is \(w.rows)×\(w.cols), the adapter expects \(rows)×\(cols)")
        }
        return canonical
    }

    /// `W' − W` for a DoRA module: `W' = diag(m / ‖W + ΔW‖_row) · (W + ΔW)` (PEFT's merge).
    static func doraChange(_ m: AdapterModule, adapter: Adapter, base w: Matrix<Double>) throws -> Matrix<Double> {
        let dw = try DenseDelta.of(m, in: adapter)
        let mag = m.doraMagnitude?.doubles() ?? []
        var d = Matrix<Double>(rows: w.rows, cols: w.cols)
        for i in 0..<w.rows {
            var norm = 0.0
            for j in 0..<w.cols { let v = w[i, j] + dw[i, j]; norm += v * v }
            let factor = mag[i] / norm.squareRoot()
            for j in 0..<w.cols { d[i, j] = factor * (w[i, j] + dw[i, j]) - w[i, j] }
        }
        return d
    }
}
