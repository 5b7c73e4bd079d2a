import ArgumentParser
import TLoRAConvert
import TLoRAInterop
import TLoRAModel

/// `tlora export SRC --format peft|gguf -o OUT`.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write an adapter in another tool's format.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case peft, gguf
    }

    @Argument(help: "Any supported adapter.")
    var source: String

    @Option(help: "Output format: peft (a directory) or gguf (a file).")
    var format: Format

    @Option(name: [.short, .customLong("output")], help: "The output path.")
    var output: String

    @Flag(help: "Replace the output if it exists.")
    var force = false

    func run() throws {
        var adapter = try AdapterLoader.load(source)
        // Other tools know only LoRA: tensor trains, Tucker slices and dense updates go through the
        // exact (lossless) to-lora conversion first.
        if adapter.modules.contains(where: { if case .lowRank = $0.update { return false }; return true }) {
            let (lora, summary) = try ToLoRA.convert(adapter, options: .init(target: .lossless))
            adapter = lora
            Console.err("note: converted \(summary.lines.filter { $0.note != "unchanged" }.count) modules to LoRA exactly (worst error \(Formatting.scientific(summary.worstError)))")
        }
        switch format {
        case .peft:
            try PEFTWriter.write(adapter, to: output, overwrite: force)
            Console.out("\(output): PEFT LoRA adapter, \(adapter.modules.count) modules")
        case .gguf:
            throw CommandFailure("\(output): GGUF export is not supported yet")
        }
    }
}
