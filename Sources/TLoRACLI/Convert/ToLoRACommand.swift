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

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case tlora, peft
    }

    @Argument(help: "Any supported adapter.")
    var source: String

    @OptionGroup var error: ErrorTargetOptions

    @Option(help: "Output: a .tlora file or a PEFT directory.")
    var format: Format = .tlora

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
        try output.check(kind: format == .peft ? .directory : .tloraFile, inputs: [source] + sourceOptions.inputPaths)
        let adapter = try AdapterLoader.load(source, options: sourceOptions)
        var options = ToLoRA.Options(target: error.target, dtype: dtype?.dtype)
        let progress = ProgressLine("converting")
        options.progress = progress.callback
        let (converted, summary) = try progress.during { try ToLoRA.convert(adapter, options: options) }
        let bytes: Int
        switch format {
        case .tlora:
            bytes = try output.write(converted).fileLength
        case .peft:
            try PEFTWriter.write(converted, to: output.output, overwrite: output.force)
            bytes = try directorySize(output.output)
        }
        ConversionPrinter.print(summary, source: source, sourceBytes: adapter.rawByteCount, outputBytes: bytes, output: output.output, json: output.json)
    }
}
