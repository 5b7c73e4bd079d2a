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

    @OptionGroup var threads: ThreadOptions

    @Flag(help: "Print the summary as one JSON document on stdout.")
    var json = false

    func run() throws {
        threads.apply()
        try OutputPlan(path: output, kind: format == .peft ? .directory : .ggufAdapter, replace: force,
                       inputs: ([source] + sourceOptions.inputPaths).compactMap { $0 }).check()
        var adapter = try AdapterLoader.load(source, options: sourceOptions)
        // What GGUF needs is known before any conversion: fail before the work.
        var arch: String? = nil
        if format == .gguf {
            arch = architecture ?? Self.architecture(of: adapter)
            if arch == nil { throw CommandFailure("\(source): the adapter does not say its model architecture; give --architecture llama|mistral|qwen2") }
        }
        // Other tools know only LoRA: tensor trains, Tucker slices and dense updates go through the
        // exact (lossless) to-lora conversion first.
        var converted = 0
        if adapter.modules.contains(where: { if case .lowRank = $0.update { return false }; return true }) {
            let progress = ProgressLine("converting to LoRA")
            var options = ToLoRA.Options(target: .lossless)
            options.progress = progress.callback
            let (lora, summary) = try progress.during { try ToLoRA.convert(adapter, options: options) }
            adapter = lora
            converted = summary.lines.filter { $0.note != "unchanged" }.count
            Console.err("note: converted \(converted) modules to LoRA exactly (worst error \(Formatting.scientific(summary.worstError)))")
        }
        var o = JSONObject()
        o["output"] = JSONValue(output)
        o["source"] = JSONValue(source)
        o["format"] = JSONValue(format.rawValue)
        o["modules"] = JSONValue(adapter.modules.count)
        o["converted_to_lora"] = JSONValue(converted)
        switch format {
        case .peft:
            try PEFTWriter.write(adapter, to: output, overwrite: force)
            if !json { Console.text("\(output): PEFT LoRA adapter, \(adapter.modules.count) modules") }
        case .gguf:
            let arch = arch ?? ""
            let report = try GGUFWriter.write(adapter, architecture: arch, heads: try sourceOptions.resolvedHeads(), to: output, overwrite: force)
            o["architecture"] = JSONValue(arch)
            o["alpha"] = JSONValue(report.alpha)
            o["scale_folded_into_b"] = JSONValue(report.bakedModules)
            if !json { Console.text("\(output): GGUF LoRA adapter (\(arch)), \(adapter.modules.count) modules, alpha \(report.alpha)") }
            if !report.bakedModules.isEmpty {
                Console.err("note: GGUF has one alpha for all modules: the scale of \(report.bakedModules.count) modules was folded into their B factors")
            }
        }
        if json { Console.out(JSONWriter.string(.object(o), indent: 2)) }
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
