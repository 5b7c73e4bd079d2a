import ArgumentParser
import TLoRAFormat
import TLoRAInterop

/// `tlora inspect PATH [--json]`: what a file or directory holds, from headers only.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what an adapter, .tlora file, safetensors file or checkpoint holds (headers only).")

    @Argument(help: "A .tlora file, PEFT or MLX-LM adapter directory, GGUF adapter, .safetensors file or checkpoint directory.")
    var path: String

    @Flag(help: "Print one JSON document instead of a table.")
    var json = false

    func run() throws {
        let report = try Self.report(for: path)
        Console.out(json ? report.renderJSON() : report.renderText())
    }

    static func report(for path: String) throws -> InspectReport {
        switch try InputKind.detect(path) {
        case .tlora:
            return InspectReport(tlora: try TLoRAFile(path: path))
        case .safetensors:
            return InspectReport(checkpoint: try Checkpoint(path: path), format: "safetensors")
        case .checkpoint:
            return InspectReport(checkpoint: try Checkpoint(path: path), format: "checkpoint")
        case .gguf, .pickle, .peftDirectory, .mlxDirectory:
            throw CommandFailure("\(path): inspecting this format is not supported yet")
        }
    }
}
