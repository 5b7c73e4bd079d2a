import ArgumentParser
import TLoRAConvert
import TLoRAFormat
import TLoRAIO
import TLoRAModel

/// `tlora bank build A1 A2 … -o BANK.tlora`.
struct BankBuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Hold many adapters of one base as one bank: shared bases per module and a small core per member.",
        discussion: """
            Every member's error on every module is at most --max-rel-error (measured and reported); \
            --rank fixes the shared rank instead. --clusters K splits the members into K groups with \
            their own bases when that is smaller at the same bound. Members are named after their \
            source (task7/ → task7) or NAME=PATH.
            """)

    @Argument(help: "The members: adapters of one base (PEFT, MLX-LM, GGUF, .tlora), each PATH or NAME=PATH.")
    var members: [String]

    @Option(help: "Guarantee ‖ΔW − ΔŴ‖_F ≤ E·‖ΔW‖_F for every member on every module. 0 = lossless (default).")
    var maxRelError: Double?

    @Option(help: "A fixed shared rank R (k_out = k_in = R) instead of a bound.")
    var rank: Int?

    @Option(help: "Cluster the members into up to K groups with their own bases, kept when smaller.")
    var clusters: Int = 1

    @Option(help: "Storage dtype of bases and cores.")
    var dtype: StorageDType = .f32

    @OptionGroup var output: ContainerOutputOptions

    @OptionGroup var sourceOptions: AdapterSourceOptions

    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        guard !members.isEmpty else { throw ValidationError("give at least one member") }
        if maxRelError != nil && rank != nil { throw ValidationError("give --max-rel-error or --rank, not both") }
        try ErrorTargetOptions.checkRange(maxRelError)
        try ErrorTargetOptions.checkReachable(maxRelError, storedAs: dtype.dtype)
        if let r = rank, r < 1 { throw ValidationError("--rank must be at least 1") }
        if clusters < 1 { throw ValidationError("--clusters must be at least 1") }
    }

    func run() throws {
        threads.apply()
        let arguments = members.map(BankMemberArgument.init)
        try output.check(inputs: arguments.map(\.path) + sourceOptions.inputPaths)
        let sources = try arguments.map { try $0.load(options: sourceOptions) }
        let progress = ProgressLine("banking")
        let options = BankBuilder.Options(maxRelativeError: rank == nil ? (maxRelError ?? 0) : nil, rank: rank, clusters: clusters,
                                          dtype: dtype.dtype, progress: progress.callback)
        let (bank, summary) = try progress.during { try BankBuilder.build(sources, options: options) }
        let report = try output.write(bank)
        let sourceBytes = sources.reduce(0) { $0 + ($1.sourceBytes ?? 0) }
        if output.json {
            Console.out(BankPrinter.json(summary, output: output.output, fileBytes: report.fileLength, sourceBytes: sourceBytes))
        } else {
            BankPrinter.print(summary, output: output.output, fileBytes: report.fileLength, sourceBytes: sourceBytes)
        }
    }
}
