import ArgumentParser
import TLoRAConvert
import TLoRAFormat
import TLoRAInterop
import TLoRAIO
import TLoRAMerge

/// `tlora extract --base BASE --finetuned FT -o OUT`.
struct ExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Extract an adapter from a fully fine-tuned checkpoint: ΔW = W_ft − W_base, truncated by rank or by error.",
        discussion: """
            Both checkpoints are memory-mapped and read tensor by tensor. Linear and convolution weights \
            become low-rank modules (a truncated SVD of ΔW; randomized for large matrices, the error \
            measured either way); embeddings, output heads, norms and other vectors that changed are \
            kept whole (PEFT's modules_to_save); a bias change goes with its layer (PEFT's lora_bias); \
            identical tensors are skipped. Without --max-rank or --max-rel-error: --max-rank 128.
            """)

    enum Form: String, ExpressibleByArgument, CaseIterable {
        case lora, tt, tucker
    }

    @Option(help: "The base checkpoint (a directory with model.safetensors or shards, or one .safetensors file).")
    var base: String

    @Option(help: "The fine-tuned checkpoint, same architecture.")
    var finetuned: String

    @OptionGroup var error: ErrorTargetOptions

    @Option(help: "lora (default), tt (tensor trains) or tucker (Tucker groups, with --group).")
    var form: Form = .lora

    @Option(help: "With --form tucker: module, att, qkv, depth, att-qkv, att-depth, qkv-depth or att-qkv-depth.")
    var group: GroupKind?

    @Option(help: "Attention heads, for the att groupings (default: the fine-tune's config.json).")
    var heads: Int?

    @Option(help: "Output: a .tlora file or a PEFT directory.")
    var format: LoRAOutputFormat = .tlora

    @Option(help: "Only tensors whose name matches this regular expression, e.g. 'self_attn\\.(q|v)_proj'.")
    var modules: String?

    @Option(help: "Storage dtype of the factors.")
    var dtype: StorageDType = .f32

    @OptionGroup var output: ContainerOutputOptions

    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        if form == .tucker && group == nil { throw ValidationError("--form tucker needs --group") }
        if form != .tucker && group != nil { throw ValidationError("--group applies to --form tucker only") }
        if format == .peft && form != .lora { throw ValidationError("--format peft holds LoRA only: use --form lora (or convert the .tlora file later)") }
        if let h = heads, h < 1 { throw ValidationError("--heads must be at least 1") }
    }

    var target: ConversionTarget {
        error.maxRelError == nil && error.maxRank == nil ? ConversionTarget(maxRank: 128) : error.target
    }

    func run() throws {
        threads.apply()
        try output.check(kind: format.outputKind, inputs: [base, finetuned])
        let pair = try CheckpointPair(base: try Checkpoint(path: base), finetuned: try Checkpoint(path: finetuned))
        var resolvedHeads = heads
        if resolvedHeads == nil, let config = try pair.finetuned.config() {
            resolvedHeads = config["num_attention_heads"]?.intValue ?? config["n_head"]?.intValue
        }
        let progress = ProgressLine("extracting")
        let options = ExtractOptions(target: target, form: form == .lora ? .lora : (form == .tt ? .tensorTrain : .tucker(group ?? .depth)),
                                     modules: modules, dtype: dtype.dtype, heads: resolvedHeads, progress: progress.callback)
        let (adapter, summary) = try progress.during { try Extractor.extract(pair, options: options) }
        let bytes = try output.write(adapter, as: format)
        let modulesLine = "\(summary.conversion.lines.count) module(s)\(form == .tucker ? "/group(s)" : "") extracted, \(summary.biasChanges) bias change(s) with their layer, "
            + "\(summary.replaced.count) tensor(s) kept whole, \(summary.unchanged) unchanged"
        if output.json {
            var o = ConversionPrinter.document(summary.conversion, source: finetuned, sourceBytes: nil, outputBytes: bytes, output: output.output)
            o["base"] = JSONValue(base)
            o["kept_whole"] = .array(summary.replaced.map { .object(JSONObject([("name", JSONValue($0.name)), ("reason", JSONValue($0.reason))])) })
            o["not_selected"] = JSONValue(summary.notSelected)
            o["bias_changes"] = JSONValue(summary.biasChanges)
            o["unchanged_tensors"] = JSONValue(summary.unchanged)
            Console.out(JSONWriter.string(.object(o), indent: 2))
            return
        }
        ConversionPrinter.print(summary.conversion, source: finetuned, sourceBytes: nil, outputBytes: bytes, output: output.output, json: false)
        for (name, reason) in summary.replaced { Console.text("kept whole: \(name): \(reason)") }
        if !summary.notSelected.isEmpty {
            Console.text("not selected by --modules: \(summary.notSelected.count) changed tensor(s), e.g. \(summary.notSelected.prefix(3).joined(separator: ", "))")
        }
        Console.text(modulesLine)
    }
}
