import ArgumentParser
import TLoRAConvert
import TLoRAFormat
import TLoRAInputs
import TLoRAInterop
import TLoRAIO

extension CombineMethod: ExpressibleByArgument {}
extension TaskArithmetic.MajoritySign: ExpressibleByArgument {}

/// `tlora combine A B … --method M -o OUT`.
struct CombineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "combine",
        abstract: "Combine several adapters into one LoRA adapter (PEFT's add_weighted_adapter methods).",
        discussion: """
            cat: exact (ranks add up). svd: the weighted sum of ΔW, truncated by SVD of the stacked \
            factors (--max-rank / --max-rel-error; default: the largest input rank). linear, ties, \
            dare_linear, dare_ties, magnitude_prune: PEFT's factor-wise methods, which merge the A's and \
            the B's separately (equal ranks needed) and are therefore NOT the weighted sum of ΔW. \
            ties_svd, dare_linear_svd, dare_ties_svd, magnitude_prune_svd: the same merges on each \
            module's dense ΔW, then a truncated SVD. Any adapter tlora reads takes part through its \
            exact LoRA form.
            """)

    @Argument(help: "Two or more adapters (any format tlora reads).")
    var adapters: [String]

    @Option(help: "cat, svd, linear, ties, ties_svd, dare_linear, dare_linear_svd, dare_ties, dare_ties_svd, magnitude_prune, magnitude_prune_svd.")
    var method: CombineMethod

    @Option(help: "One weight per adapter, comma-separated (default 1 each).")
    var weights: String?

    @Option(help: "Fraction of entries the pruning methods keep, in [0, 1].")
    var density: Double?

    @Option(help: "DARE's random drops: the same seed gives the same masks.")
    var seed: UInt64 = 0

    @Option(help: "TIES's sign election: total (sign of the sum) or frequency (most common sign).")
    var majoritySign: TaskArithmetic.MajoritySign = .total

    @OptionGroup var error: ErrorTargetOptions

    @Option(help: "Output: a .tlora file or a PEFT directory.")
    var format: LoRAOutputFormat = .tlora

    @Option(help: "Storage dtype of the factors.")
    var dtype: StorageDType = .f32

    @OptionGroup var output: ContainerOutputOptions

    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        if adapters.count < 2 { throw ValidationError("combine needs at least two adapters") }
        _ = try WeightList.parse(weights, adapters: adapters.count)
        if method.needsDensity && density == nil { throw ValidationError("--method \(method.rawValue) needs --density") }
        if let d = density, !(d >= 0 && d <= 1) { throw ValidationError("--density must be in [0, 1]") }
        if !method.needsDensity && density != nil { throw ValidationError("--density applies to the pruning methods only") }
        let truncates = method == .svd || method.rawValue.hasSuffix("_svd")
        if !truncates && (error.maxRank != nil || error.maxRelError != nil) {
            throw ValidationError("--max-rank and --max-rel-error apply to svd and the *_svd methods")
        }
    }

    func run() throws {
        threads.apply()
        try output.check(kind: format.outputKind, inputs: adapters)
        let loaded = try adapters.map { try AdapterLoader.load($0) }
        let truncates = error.maxRank != nil || error.maxRelError != nil
        let options = CombineOptions(method: method, weights: try WeightList.parse(weights, adapters: adapters.count), density: density, majoritySign: majoritySign,
                                     target: truncates ? error.target : nil, mask: SeededDropMask(seed: seed), dtype: dtype.dtype)
        let (combined, summary) = try Combine.combine(loaded, names: adapters, options: options)
        let bytes = try output.write(combined, as: format)
        ConversionPrinter.print(summary, source: adapters.joined(separator: ","), sourceBytes: loaded.reduce(0) { $0 + $1.rawByteCount },
                                outputBytes: bytes, output: output.output, json: output.json)
        if method.isFactorWise && !output.json {
            Console.text("note: \(method.rawValue) merges the A's and the B's separately (as PEFT does): the result is not the weighted sum of the updates; rel.error shows how far it is from it")
        }
    }
}
