import ArgumentParser
import TLoRAConvert
import TLoRAFormat
import TLoRAInputs

/// `tlora convert dense-to-tt SRC -o OUT.tlora`.
struct DenseToTTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dense-to-tt",
        abstract: "Hold every module's update as a tensor train (TT-SVD with a guaranteed error bound).")

    enum LayoutOption: String, ExpressibleByArgument, CaseIterable {
        case rowsCols = "rows-cols", matrix
    }

    @Argument(help: "Any supported adapter.")
    var source: String

    @OptionGroup var error: ErrorTargetOptions

    @Option(help: "rows-cols: row modes then column modes (TT-LoRA); matrix: interleaved TT-matrix cores.")
    var layout: LayoutOption = .rowsCols

    @Option(help: "Mode sizes for every module, e.g. 16,16,16x16,16,16 (rows x columns). Default: automatic.")
    var modes: String?

    @Option(help: "Largest automatic mode size.")
    var maxMode: Int = 16

    @Option(help: "Storage dtype of the cores.")
    var dtype: StorageDType = .f32

    @Flag(help: "TensorGuide's form: one train holding both LoRA factors (a joint_train update; see docs/NUMERICS.md).")
    var joint = false

    @OptionGroup var output: ContainerOutputOptions

    @OptionGroup var sourceOptions: AdapterSourceOptions

    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        if let m = modes, TTModes.parse(m) == nil { throw ValidationError("--modes must look like 16,16,16x16,16,16") }
        if maxMode < 2 { throw ValidationError("--max-mode must be at least 2") }
        try error.checkReachable(storedAs: dtype.dtype)
        if joint, modes != nil || layout != .rowsCols {
            throw ValidationError("--joint trains the joint factor vector: --modes and --layout do not apply (use --max-mode)")
        }
    }

    func run() throws {
        threads.apply()
        try output.check(inputs: [source] + sourceOptions.inputPaths)
        let adapter = try AdapterLoader.load(source, options: sourceOptions)
        var options = DenseToTT.Options(target: error.target, layout: layout == .matrix ? .interleaved : .rowsThenColumns,
                                        modes: modes.flatMap(TTModes.parse), maxMode: maxMode, dtype: dtype.dtype,
                                        joint: joint)
        let progress = ProgressLine("converting")
        options.progress = progress.callback
        let (converted, summary) = try progress.during { try DenseToTT.convert(adapter, options: options) }
        let report = try output.write(converted)
        ConversionPrinter.print(summary, source: source, sourceBytes: adapter.rawByteCount, outputBytes: report.fileLength, output: output.output, json: output.json)
    }
}
