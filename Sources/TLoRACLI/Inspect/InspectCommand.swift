import ArgumentParser
import TLoRAFormat
import TLoRAIO
import TLoRAInputs
import TLoRAInterop
import TLoRAModel

/// `tlora inspect PATH [--json]`: what a file or directory holds, from headers only.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what an adapter, .tlora file, safetensors file or checkpoint holds (headers only).")

    @Argument(help: "A .tlora file, PEFT or MLX-LM adapter directory, GGUF adapter, kohya/LyCORIS/diffusers LoRA, .safetensors file, checkpoint directory, diffusers pipeline directory or single-file checkpoint.")
    var path: String

    @Flag(help: "Print one JSON document instead of a table.")
    var json = false

    @OptionGroup var sourceOptions: AdapterSourceOptions

    func run() throws {
        let report = try Self.report(for: path, options: sourceOptions)
        if json { Console.out(report.renderJSON()) } else { Console.text(report.renderText()) }
    }

    static func report(for path: String, options: AdapterSourceOptions? = nil) throws -> InspectReport {
        switch try InputKind.detect(path) {
        case .research:
            let adapter = try ResearchStateDict.read(path: path, options: try options?.resolvedResearch() ?? ResearchOptions())
            return InspectReport(adapter: adapter, path: path, format: adapter.metadata.sourceFormat ?? "research", fileBytes: try fileSize(path: path))
        case .tlora:
            return InspectReport(tlora: try TLoRAFile(path: path))
        case .safetensors:
            let base = try ModelBase(path: path)
            if base.layout == .singleFile { return InspectReport(base: base) }
            return InspectReport(checkpoint: base.components[0].checkpoint, format: "safetensors")
        case .pipeline:
            return InspectReport(base: try ModelBase(path: path))
        case .diffusionAdapter:
            var adapter = try DiffusionAdapter.read(path: path)
            // A LyCORIS file of one model gets the base's module paths when a base config is given.
            let isLyCORIS = { (m: AdapterModule) in m.attributes["kohya.prefix"] == "lycoris_" }
            var resolved = false
            if let base = try options?.resolvedResearch().baseShapes, adapter.modules.contains(where: isLyCORIS) {
                try LyCORISNames.resolve(&adapter, tensorNames: base.tensorNames, path: path)
                resolved = true
            }
            var report = InspectReport(adapter: adapter, path: path, format: adapter.metadata.sourceFormat ?? "diffusers",
                                       fileBytes: pathKind(path) == .directory ? try directorySize(path) : try fileSize(path: path))
            if adapter.modules.contains(where: { $0.attributes["diffusion.flat"] != nil && !(resolved && isLyCORIS($0)) }) {
                report.notes.append("module names are the file's own keys; `merge --base` (or `--base-config` for a LyCORIS file of one model) resolves them against the base's tensors")
            }
            return report
        case .checkpoint:
            return InspectReport(checkpoint: try Checkpoint(path: path), format: "checkpoint")
        case .peftDirectory:
            // VeRA and IA³ need the layer shapes, PEFT conv LoKr/LoHa show their kernels with them.
            let base = try options?.resolvedResearch().baseShapes
            return InspectReport(adapter: try PEFTReader.read(directory: path, base: base), path: path, format: "peft", fileBytes: try directorySize(path))
        case .mlxDirectory:
            return InspectReport(adapter: try MLXAdapter.read(directory: path), path: path, format: "mlx-lm", fileBytes: try directorySize(path))
        case .gguf:
            var report = InspectReport(adapter: try AdapterLoader.load(path, headsRequired: false), path: path, format: "gguf", fileBytes: try fileSize(path: path))
            report.useStorage(of: try GGUFFile(path: path))
            return report
        case .pickle:
            return InspectReport(adapter: try AdapterLoader.load(path), path: path, format: "pytorch", fileBytes: try fileSize(path: path))
        }
    }
}

/// Total bytes of the regular files directly inside a directory.
func directorySize(_ path: String) throws -> Int {
    try directoryEntries(path).reduce(0) { total, name in
        let p = joinPath(path, name)
        return total + (pathKind(p) == .file ? try fileSize(path: p) : 0)
    }
}
