import ArgumentParser
import TLoRAConvert
import TLoRAIO
import TLoRAInputs
import TLoRAInterop
import TLoRAModel

/// `tlora export SRC --format peft|gguf|mlx -o OUT [--target vllm --base BASE]`.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write an adapter in another tool's format.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case peft, gguf, mlx
    }

    /// A server whose loader adds rules to the format's own.
    enum Target: String, ExpressibleByArgument, CaseIterable {
        case vllm
    }

    @Argument(help: "Any supported adapter.")
    var source: String

    @Option(help: "Output format: peft (a directory), gguf (a file) or mlx (an MLX-LM directory).")
    var format: Format

    @Option(name: [.short, .customLong("output")], help: "The output path.")
    var output: String

    @Flag(help: "Replace the output if it exists.")
    var force = false

    @Option(help: "GGUF architecture (llama, mistral, qwen2, qwen3, gemma, phi3); default: from the adapter's metadata.")
    var architecture: String?

    @Option(help: "Make the PEFT directory load in this server (vllm): ranks padded to an allowed value, one alpha, DoRA and modules_to_save folded (with --base) or refused.")
    var target: Target?

    @Option(help: "The base checkpoint (with --target vllm): folds DoRA and replaced tensors into plain LoRA updates.")
    var base: String?

    @Option(name: .customLong("max-rel-error"), help: "With --target vllm and --base: bound on each folded update's relative error (its rank grows to meet it).")
    var maxRelError: Double?

    @OptionGroup var sourceOptions: AdapterSourceOptions

    @OptionGroup var threads: ThreadOptions

    @Flag(help: "Print the summary as one JSON document on stdout.")
    var json = false

    func validate() throws {
        if target != nil, format != .peft { throw ValidationError("--target vllm applies to --format peft") }
        if target == nil, base != nil || maxRelError != nil { throw ValidationError("--base and --max-rel-error apply to --target vllm") }
        if let e = maxRelError, !(e > 0 && e < 1) { throw ValidationError("--max-rel-error must be between 0 and 1") }
        if maxRelError != nil, base == nil { throw ValidationError("--max-rel-error needs --base (it bounds folded updates)") }
    }

    func run() throws {
        threads.apply()
        try OutputPlan(path: output, kind: format == .gguf ? .ggufAdapter : .directory, replace: force,
                       inputs: ([source, base] + sourceOptions.inputPaths).compactMap { $0 }).check()
        var adapter = try AdapterLoader.load(source, options: sourceOptions)
        // What GGUF needs is known before any conversion: fail before the work.
        var arch: String? = nil
        if format == .gguf {
            arch = architecture ?? Self.architecture(of: adapter)
            if arch == nil { throw CommandFailure("\(source): the adapter does not say its model architecture; give --architecture llama|mistral|qwen2|qwen3|gemma|phi3") }
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
        case .peft where target == .vllm:
            let checkpoint = try base.map { try Checkpoint(path: $0) }
            let baseTensors = checkpoint.map { c in VLLMTarget.Base(path: c.path) { name in try c.entry(name).map { try $0.shard.tensor(name) } } }
            let (ready, report) = try VLLMTarget.prepare(adapter, options: .init(base: baseTensors, maxRelativeError: maxRelError), path: source)
            try PEFTWriter.write(ready, to: output, overwrite: force, freshConfig: true)
            o["target"] = JSONValue("vllm")
            o["rank"] = JSONValue(report.rank)
            o["zero_padded"] = JSONValue(report.padded)
            o["scale_folded_into_b"] = JSONValue(report.baked)
            o["folded"] = .array(report.folded.map { f in
                .object(JSONObject([("module", JSONValue(f.module)), ("what", JSONValue(f.what)), ("rank", JSONValue(f.rank)),
                                    ("rel_error", JSONValue(f.relativeError))]))
            })
            o["dropped"] = JSONValue(report.dropped)
            if !json { Console.text("\(output): PEFT LoRA adapter for vLLM, \(ready.modules.count) modules, rank \(report.rank) (serve with --max-lora-rank \(report.rank) or more)") }
            if !report.padded.isEmpty { Console.err("note: \(report.padded.count) modules zero-padded to rank \(report.rank) (exact)") }
            if !report.baked.isEmpty { Console.err("note: one lora_alpha for all modules: the scale of \(report.baked.count) modules was folded into their B factors") }
            for f in report.folded {
                Console.err("note: \(f.module): \(f.what) folded into a rank-\(f.rank) LoRA update, relative error \(Formatting.scientific(f.relativeError))")
            }
            if !report.dropped.isEmpty { Console.err("note: dropped \(report.dropped.joined(separator: ", ")) (equal to the base's)") }
        case .mlx:
            let report = try MLXWriter.write(adapter, to: output, overwrite: force)
            o["rank"] = JSONValue(report.rank)
            o["scale"] = JSONValue(report.scale)
            o["zero_padded"] = JSONValue(report.paddedModules)
            o["scale_folded_into_b"] = JSONValue(report.bakedModules)
            if !json { Console.text("\(output): MLX-LM \(report.fineTuneType) adapter, \(adapter.modules.count) modules, rank \(report.rank), scale \(report.scale)") }
            if !report.paddedModules.isEmpty { Console.err("note: mlx-lm has one rank: \(report.paddedModules.count) modules zero-padded to rank \(report.rank) (exact)") }
            if !report.bakedModules.isEmpty { Console.err("note: mlx-lm has one scale: the scale of \(report.bakedModules.count) modules was folded into their B factors") }
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
