import ArgumentParser
import TLoRAConvert
import TLoRAFormat
import TLoRAInputs

extension GroupKind: ExpressibleByArgument {}

/// `tlora convert dense-to-tucker SRC -o OUT.tlora --group G`.
struct DenseToTuckerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dense-to-tucker",
        abstract: "Stack modules into groups (TensLoRA constructions) held in Tucker form (ST-HOSVD, optional HOOI).")

    @Argument(help: "Any supported adapter.")
    var source: String

    @Option(help: "module, att, qkv, depth, att-qkv, att-depth, qkv-depth or att-qkv-depth.")
    var group: GroupKind

    @OptionGroup var error: ErrorTargetOptions

    @Option(help: "Fixed Tucker ranks in mode order: in, out (or head_dim, head), then projection and/or layer.")
    var ranks: String?

    @Option(help: "The projections stacked by qkv constructions, e.g. gate_proj,up_proj (default: the q/k/v names found).")
    var projections: String?

    @Option(help: "HOOI sweeps after ST-HOSVD; each is kept only if it lowers the error.")
    var refine: Int = 0

    @Option(help: "Storage dtype of core and factors.")
    var dtype: StorageDType = .f32

    @OptionGroup var output: ContainerOutputOptions

    @OptionGroup var sourceOptions: AdapterSourceOptions

    @OptionGroup var threads: ThreadOptions

    var parsedRanks: [Int]? { ranks.map { $0.split(separator: ",").compactMap { Int($0) } } }

    func validate() throws {
        if let r = ranks, (parsedRanks ?? []).count != r.split(separator: ",").count || (parsedRanks ?? []).contains(where: { $0 < 1 }) {
            throw ValidationError("--ranks must be positive integers separated by commas")
        }
        if refine < 0 { throw ValidationError("--refine must not be negative") }
        if ranks != nil, error.maxRelError != nil || error.maxRank != nil {
            throw ValidationError("--ranks fixes the core size: --max-rel-error and --max-rank do not apply")
        }
        try error.checkReachable(storedAs: dtype.dtype)
    }

    func run() throws {
        threads.apply()
        try output.check(inputs: [source] + sourceOptions.inputPaths)
        let adapter = try AdapterLoader.load(source, options: sourceOptions)
        // One head count serves both: the att constructions split outputs into heads, and GGUF
        // sources need it to undo llama.cpp's q/k permutation (--heads, or --base-config).
        // Key/value heads: --kv-heads, the config's num_key_value_heads, or (with --heads alone)
        // whatever the k/v outputs hold at the query's head size.
        let resolved = try sourceOptions.resolvedHeads()
        let keyValueHeads = sourceOptions.heads != nil ? sourceOptions.kvHeads : resolved?.keyValue
        var options = DenseToTucker.Options(target: ranks == nil ? error.target : ConversionTarget(maxRelativeError: nil),
                                            group: group, projections: projections.map { $0.split(separator: ",").map(String.init) },
                                            heads: resolved?.attention, keyValueHeads: keyValueHeads, ranks: parsedRanks, refine: refine, dtype: dtype.dtype)
        let progress = ProgressLine("converting")
        options.progress = progress.callback
        let (converted, summary) = try progress.during { try DenseToTucker.convert(adapter, options: options) }
        let report = try output.write(converted)
        ConversionPrinter.print(summary, source: source, sourceBytes: adapter.rawByteCount, outputBytes: report.fileLength, output: output.output, json: output.json)
    }
}
