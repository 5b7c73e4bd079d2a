import ArgumentParser
import TLoRAConvert
import TLoRAFormat
import TLoRAInputs
import TLoRAInterop
import TLoRAIO

/// `tlora convert to-lora SRC -o OUT`.
struct ToLoRACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "to-lora",
        abstract: "Any update (tensor train, Tucker slice, LoRA) as plain LoRA: exact rank, or truncated (rank resizing).")

    @Argument(help: "Any supported adapter.")
    var source: String

    @OptionGroup var error: ErrorTargetOptions

    @Option(help: "Output: a .tlora file or a PEFT directory.")
    var format: LoRAOutputFormat = .tlora

    @Option(help: "Storage dtype of the factors (default f32).")
    var dtype: StorageDType?

    @OptionGroup var output: ContainerOutputOptions

    @OptionGroup var sourceOptions: AdapterSourceOptions

    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        try error.checkReachable(storedAs: dtype?.dtype ?? .f32)
    }

    func run() throws {
        threads.apply()
        try output.check(kind: format.outputKind, inputs: [source] + sourceOptions.inputPaths)
        let adapter = try AdapterLoader.load(source, options: sourceOptions)
        var options = ToLoRA.Options(target: error.target, dtype: dtype?.dtype)
        let progress = ProgressLine("converting")
        options.progress = progress.callback
        let (converted, summary) = try progress.during { try ToLoRA.convert(adapter, options: options) }
        let bytes = try output.write(converted, as: format)
        ConversionPrinter.print(summary, source: source, sourceBytes: adapter.rawByteCount, outputBytes: bytes, output: output.output, json: output.json)
    }
}
