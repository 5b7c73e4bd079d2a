import TLoRAConvert
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// What `tlora extract` produces and how.
public struct ExtractOptions: Sendable {
    public enum Form: Sendable, Equatable {
        case lora
        case tensorTrain
        case tucker(GroupKind)
    }

    /// Per module (per group for Tucker): ‖ΔW − ΔŴ‖_F ≤ E‖ΔW‖_F, and/or every rank ≤ R.
    public var target: ConversionTarget
    public var form: Form
    /// Only tensors whose name contains a match of this regular expression are extracted.
    public var modules: String?
    /// Storage dtype of the factors.
    public var dtype: DType
    /// Attention heads, for the Tucker groupings that split heads.
    public var heads: Int?
    /// Called with (modules done, modules total).
    public var progress: (@Sendable (Int, Int) -> Void)?

    public init(target: ConversionTarget, form: Form = .lora, modules: String? = nil, dtype: DType = .f32, heads: Int? = nil,
                progress: (@Sendable (Int, Int) -> Void)? = nil) {
        self.target = target
        self.form = form
        self.modules = modules
        self.dtype = dtype
        self.heads = heads
        self.progress = progress
    }
}

/// What an extraction did, beyond the per-module lines.
public struct ExtractSummary: Sendable {
    /// One line per module (per group for Tucker), with the error measured against the dense ΔW.
    public var conversion: ConversionSummary
    /// Tensors kept whole (PEFT `modules_to_save`), with why.
    public var replaced: [(name: String, reason: String)] = []
    /// Bias changes carried by their module (PEFT `lora_bias`).
    public var biasChanges: Int = 0
    /// Tensors identical in both checkpoints.
    public var unchanged: Int = 0
    /// Changed tensors left out by `--modules`.
    public var notSelected: [String] = []
}

/// `tlora extract`: the difference between a fine-tune and its base as an adapter.
///
/// Tensor by tensor from the two mappings (`CheckpointPair`): identical tensors are skipped;
/// 2-D weights (linear layers; GPT-2's `Conv1D` stored `in × out`) and convolution kernels
/// (`out × in·k…`) become low-rank modules by a truncated SVD of `ΔW` (`DenseTruncation`: exact
/// for small matrices, randomized with the error measured for large ones); embeddings, output heads,
/// norms and other vectors are kept whole as replaced tensors; a bias change goes with its module.
/// `--form tt|tucker` then holds the extracted low-rank updates as tensor trains or Tucker groups
/// (`DenseToTT`, `DenseToTucker`), splitting the error budget so the stated bound holds against the
/// dense ΔW, and measures the result against the dense ΔW once more.
public enum Extractor {
    /// GPT-2-family layers store `Conv1D` weights `in × out`.
    static let conv1DFamilies: Set<String> = ["gpt2"]
    static let conv1DLayers = ["c_attn", "c_proj", "c_fc", "q_attn"]

    struct Plan {
        var modules: [(item: CheckpointPair.Item, module: String, layout: WeightLayout, kernel: [Int])] = []
        var biases: [String: CheckpointPair.Item] = [:]  // module name → bias item
        var replaced: [(item: CheckpointPair.Item, reason: String)] = []
        var unchanged = 0
        var notSelected: [String] = []
    }

    public static func extract(_ pair: CheckpointPair, options: ExtractOptions) throws -> (Adapter, ExtractSummary) {
        let plan = try Self.plan(pair, options: options)
        guard !plan.modules.isEmpty || !plan.replaced.isEmpty || !plan.biases.isEmpty else {
            throw ConvertError(.nothingToExtract, "\(pair.finetuned.path): identical to \(pair.base.path)" + (plan.notSelected.isEmpty ? "" : " in every tensor --modules selects")
                + "; nothing to extract")
        }
        // The LoRA step's share of the error budget: all of it for LoRA, half for the tensor forms
        // (the second step gets (E − e₁)/(1 + e₁), so e₁ + e₂(1 + e₁) = E; ‖ΔŴ_LoRA‖ ≤ ‖ΔW‖).
        let e = options.target.maxRelativeError
        let e1 = options.form == .lora ? e : e.map { $0 / 2 }
        let loraTarget = ConversionTarget(maxRelativeError: e1, maxRank: options.target.maxRank)
        let total = plan.modules.count
        let counter = ProgressCounter(total: total, report: options.progress)
        let results = try Parallel.map(count: plan.modules.count) { i -> (AdapterModule, ConversionSummary.Line)? in
            let p = plan.modules[i]
            // A module's f64 work arrays are freed here; give their pages back before the next one (glibc keeps
            // freed blocks below its mmap threshold in the heap, behind the factors kept for the output).
            defer { p.item.release(); releaseFreeMemory(); counter.advance() }
            return try extractModule(p, pair: pair, target: loraTarget, dtype: options.dtype)
        }
        var adapter = Adapter()
        adapter.metadata.sourceFormat = "tlora"
        adapter.metadata.baseModel = pair.base.path
        adapter.metadata.architecture = (try? pair.finetuned.config())??["model_type"]?.stringValue
        adapter.metadata["conversion"] = "extract"
        var summary = ExtractSummary(conversion: ConversionSummary())
        summary.unchanged = plan.unchanged + results.filter { $0 == nil }.count
        summary.notSelected = plan.notSelected
        for r in results.compactMap({ $0 }) {
            var m = r.0
            if let bias = plan.biases[m.name] {
                let delta = bias.difference()
                if !delta.allSatisfy(\.isFinite) { try bias.requireFinite(pair) }
                if delta.contains(where: { $0 != 0 }) {
                    m.biasDelta = StoredTensor(delta, shape: [m.outFeatures], dtype: options.dtype)
                    summary.biasChanges += 1
                }
                bias.release()
            }
            adapter.modules.append(m)
            summary.conversion.lines.append(r.1)
        }
        let kept = Set(adapter.modules.map(\.name))
        for (module, bias) in plan.biases where !kept.contains(module) {
            // The weight did not change: the bias alone is kept whole.
            adapter.replacedTensors.append(ReplacedTensor(target: bias.name, value: try bias.finetunedTensor()))
            summary.replaced.append((bias.name, "bias of a layer whose weight did not change"))
        }
        for (item, reason) in plan.replaced {
            adapter.replacedTensors.append(ReplacedTensor(target: item.name, value: try item.finetunedTensor()))
            summary.replaced.append((item.name, reason))
        }
        switch options.form {
        case .lora:
            return (adapter, summary)
        case .tensorTrain, .tucker:
            return try tensorForm(adapter, pair: pair, e1: e1, options: options, summary: summary)
        }
    }

    /// Which tensors become modules, biases or replacements.
    static func plan(_ pair: CheckpointPair, options: ExtractOptions) throws -> Plan {
        var regex: Regex<AnyRegexOutput>? = nil
        if let pattern = options.modules {
            do { regex = try Regex(pattern) } catch { throw ConvertError(.invalidOptions, "--modules \(pattern): not a regular expression (\(error))") }
        }
        let family = (try? pair.finetuned.config())??["model_type"]?.stringValue ?? ""
        var plan = Plan()
        var weightModules = Set<String>()
        var biasItems: [(String, CheckpointPair.Item)] = []
        for item in pair.items {
            // Comparing touches every page of an unchanged tensor (an embedding, a head): drop them.
            if item.isIdentical { item.release(); plan.unchanged += 1; continue }
            if let regex, (try? regex.firstMatch(in: item.name)) == nil { plan.notSelected.append(item.name); continue }
            let shape = item.shape
            let isWeight = item.name.hasSuffix(".weight")
            let module = isWeight ? String(item.name.dropLast(".weight".count)) : item.name
            if item.isResized {
                plan.replaced.append((item, "resized from \(Formatting.shape(item.base.shape)) to \(Formatting.shape(shape)) (a grown vocabulary)"))
            } else if isWeight && shape.count == 2 && CheckpointPair.isEmbeddingLike(item.name) {
                plan.replaced.append((item, "embedding or output head: kept whole"))
            } else if isWeight && shape.count >= 2 && shape.allSatisfy({ $0 > 0 }) {
                let conv1D = shape.count == 2 && conv1DFamilies.contains(family) && conv1DLayers.contains { module.hasSuffix($0) }
                plan.modules.append((item, module, conv1D ? .inOut : .outIn, Array(shape.dropFirst(2))))
                weightModules.insert(module)
            } else if item.name.hasSuffix(".bias") && shape.count == 1 {
                biasItems.append((String(item.name.dropLast(".bias".count)), item))
            } else {
                plan.replaced.append((item, shape.count <= 1 ? "a vector (norm or scale): kept whole" : "not a weight matrix: kept whole"))
            }
        }
        // Whole tensors must be finite in both (modules and biases are checked on their difference).
        for (item, _) in plan.replaced {
            try item.requireFinite(pair)
            item.release()
        }
        for (module, item) in biasItems {
            if weightModules.contains(module) { plan.biases[module] = item } else {
                plan.replaced.append((item, "bias of a layer whose weight did not change"))
            }
        }
        return plan
    }

    /// One module: ΔW as a matrix in canonical `out × in` orientation, truncated, stored, measured.
    static func extractModule(_ p: (item: CheckpointPair.Item, module: String, layout: WeightLayout, kernel: [Int]),
                              pair: CheckpointPair, target: ConversionTarget, dtype: DType) throws -> (AdapterModule, ConversionSummary.Line)? {
        let shape = p.item.shape
        let delta = p.item.difference()
        // NaN or ±∞ on either side makes the difference non-finite; then name the file.
        if !delta.allSatisfy(\.isFinite) { try p.item.requireFinite(pair) }
        guard delta.contains(where: { $0 != 0 }) else { return nil }  // only signed zeros changed
        var x: Matrix<Double>
        let out: Int, inFeatures: Int
        if p.layout == .inOut {
            x = Matrix(rows: shape[0], cols: shape[1], storage: delta).transposed()
            (out, inFeatures) = (shape[1], shape[0])
        } else {
            out = shape[0]
            inFeatures = shape.dropFirst().reduce(1, *)
            x = Matrix(rows: out, cols: inFeatures, storage: delta)
        }
        let t = DenseTruncation.truncate(x, target: target, seed: XXH64.hash(Array(p.module.utf8)))
        let a = StoredTensor(t.form.a, dtype: dtype), b = StoredTensor(t.form.b, dtype: dtype)
        // The error of the factors as stored, against the dense ΔW.
        let error = DenseTruncation.residualNorm(x, LowRankForm(b: b.matrix(), a: a.matrix()))
        let relative = t.norm > 0 ? error / t.norm : error
        let rank = t.form.rank
        let module = AdapterModule(name: p.module, target: p.item.name, layout: p.layout, outFeatures: out, inFeatures: inFeatures, scale: 1,
                                   update: .lowRank(a: a, b: b), kernel: p.kernel,
                                   conversion: ConversionRecord(method: t.method, maxRelativeError: target.maxRelativeError, relativeError: relative,
                                                                sourceParameters: out * inFeatures))
        let line = ConversionSummary.Line(name: p.module, form: "low_rank", ranks: [rank], sourceParameters: out * inFeatures,
                                          parameters: a.elementCount + b.elementCount, bound: target.maxRelativeError, relativeError: relative,
                                          note: t.method)
        return (module, line)
    }

    /// `--form tt|tucker`: the extracted LoRA held as tensor trains or Tucker groups with the rest of
    /// the budget, then every module (group) measured against its dense ΔW.
    static func tensorForm(_ lora: Adapter, pair: CheckpointPair, e1: Double?, options: ExtractOptions, summary: ExtractSummary) throws -> (Adapter, ExtractSummary) {
        let e2 = options.target.maxRelativeError.map { e in (e - (e1 ?? 0)) / (1 + (e1 ?? 0)) }
        let second = ConversionTarget(maxRelativeError: e2, maxRank: options.target.maxRank)
        var converted: Adapter
        var lines: [ConversionSummary.Line]
        switch options.form {
        case .tensorTrain:
            let (a, s) = try DenseToTT.convert(lora, options: .init(target: second, dtype: options.dtype))
            (converted, lines) = (a, s.lines)
        case .tucker(let group):
            let (a, s) = try DenseToTucker.convert(lora, options: .init(target: second, group: group, heads: options.heads, dtype: options.dtype))
            (converted, lines) = (a, s.lines)
        case .lora:
            return (lora, summary)
        }
        // Measure each module against its dense ΔW, read again from the pair.
        let items = Dictionary(uniqueKeysWithValues: pair.items.map { ($0.name, $0) })
        let measured = try Parallel.map(count: converted.modules.count) { i -> (String, Double, Double) in
            let m = converted.modules[i]
            guard let item = items[m.target] else { throw ConvertError(.missingBaseTensor, "extract: lost track of \(m.target)") }
            defer { item.release() }
            let delta = item.difference()
            let x = m.layout == .inOut
                ? Matrix(rows: m.inFeatures, cols: m.outFeatures, storage: delta).transposed()
                : Matrix(rows: m.outFeatures, cols: m.inFeatures, storage: delta)
            var f = try LowRankForm.orDense(m, in: converted)
            for k in f.b.storage.indices { f.b.storage[k] *= m.scale }
            return (m.name, DenseTruncation.residualNorm(x, f), x.frobeniusNorm)
        }
        let byName = Dictionary(uniqueKeysWithValues: measured.map { ($0.0, ($0.1, $0.2)) })
        var out = summary
        out.conversion.lines = lines.map { line in
            var l = line
            let members = l.members.isEmpty ? [l.name] : l.members
            var d2 = 0.0, n2 = 0.0
            for name in members { if let (d, n) = byName[name] { d2 += d * d; n2 += n * n } }
            l.relativeError = n2 > 0 ? (d2 / n2).squareRoot() : d2.squareRoot()
            l.bound = options.target.maxRelativeError
            l.note = (l.note.map { $0 + "; " } ?? "") + "error vs the dense ΔW"
            return l
        }
        return (converted, out)
    }
}
