import ArgumentParser
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
        let adapter = try AdapterLoader.load(source)
        switch format {
        case .peft:
            try PEFTWriter.write(adapter, to: output, overwrite: force)
            Console.out("\(output): PEFT LoRA adapter, \(adapter.modules.count) modules")
        case .gguf:
            throw CommandFailure("\(output): GGUF export is not supported yet")
        }
    }
}
