import ArgumentParser
import TLoRAConvert
import TLoRAIO
import TLoRAInputs
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

    @Option(help: "GGUF architecture (llama, mistral, qwen2); default: from the adapter's metadata.")
    var architecture: String?

    @OptionGroup var sourceOptions: AdapterSourceOptions

    func run() throws {
        try OutputPlan(path: output, kind: format == .peft ? .directory : .ggufAdapter, replace: force,
                       inputs: ([source] + sourceOptions.inputPaths).compactMap { $0 }).check()
        var adapter = try AdapterLoader.load(source, options: sourceOptions)
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
            guard let arch = architecture ?? Self.architecture(of: adapter) else {
                throw CommandFailure("\(source): the adapter does not say its model architecture; give --architecture llama|mistral|qwen2")
            }
            let report = try GGUFWriter.write(adapter, architecture: arch, heads: try sourceOptions.resolvedHeads(), to: output, overwrite: force)
            Console.out("\(output): GGUF LoRA adapter (\(arch)), \(adapter.modules.count) modules, alpha \(report.alpha)")
            if !report.bakedModules.isEmpty {
                Console.err("note: GGUF has one alpha for all modules: the scale of \(report.bakedModules.count) modules was folded into their B factors")
            }
        }
    }
}

extension ExportCommand {
    /// The GGUF architecture an adapter was made for: recorded by a GGUF import, or PEFT's
    /// `auto_mapping.base_model_class`.
    static func architecture(of adapter: Adapter) -> String? {
        if let a = adapter.metadata.architecture, ArchitectureTable.gguf(a) != nil { return a }
        if let text = adapter.metadata["peft.adapter_config"], let json = try? JSONParser.parse(text),
           let cls = json["auto_mapping"]?["base_model_class"]?.stringValue {
            return ArchitectureTable.modelType(cls)?.gguf
        }
        return nil
    }
}
