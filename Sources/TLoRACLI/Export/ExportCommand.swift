import ArgumentParser
import TLoRAConvert
import TLoRAIO
import TLoRAInputs
import TLoRAInterop
import TLoRAModel

/// `tlora export SRC --format peft|gguf|kohya|lycoris|mlx -o OUT [--base BASE] [--target vllm]`.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write an adapter in another tool's format.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case peft, gguf, kohya, lycoris, mlx
    }

    /// A server whose loader adds rules to the format's own.
    enum Target: String, ExpressibleByArgument, CaseIterable {
        case vllm
    }

    @Argument(help: "Any supported adapter.")
    var source: String

    @Option(help: "Output format: peft (a directory; for a diffusion adapter the layout diffusers' load_lora_weights reads), gguf (a file), kohya (a .safetensors file), lycoris (a .safetensors file of lycoris_ keys, what LyCORIS's create_lycoris_from_weights loads) or mlx (an MLX-LM directory).")
    var format: Format

    @Option(name: [.short, .customLong("output")], help: "The output path.")
    var output: String

    @Flag(help: "Replace the output if it exists.")
    var force = false

    @Option(help: "GGUF architecture (llama, mistral, qwen2, qwen3, gemma, phi3); default: from the adapter's metadata.")
    var architecture: String?

    @Option(help: "Make the PEFT directory load in this server (vllm): ranks padded to an allowed value, one alpha, DoRA and modules_to_save folded (with --base) or refused.")
    var target: Target?

    @Option(help: "The base model: with --target vllm a checkpoint to fold DoRA and replaced tensors against; for a diffusion adapter the pipeline directory or single file whose names the kohya or diffusers keys take.")
    var base: String?

    @Option(name: .customLong("max-rel-error"), help: "With --target vllm and --base: bound on each folded update's relative error (its rank grows to meet it).")
    var maxRelError: Double?

    @OptionGroup var sourceOptions: AdapterSourceOptions

    @OptionGroup var threads: ThreadOptions

    @Flag(help: "Print the summary as one JSON document on stdout.")
    var json = false

    func validate() throws {
        if target != nil, format != .peft { throw ValidationError("--target vllm applies to --format peft") }
        if target == nil, maxRelError != nil { throw ValidationError("--max-rel-error applies to --target vllm") }
        if let e = maxRelError, !(e > 0 && e < 1) { throw ValidationError("--max-rel-error must be between 0 and 1") }
        if maxRelError != nil, base == nil { throw ValidationError("--max-rel-error needs --base (it bounds folded updates)") }
    }

    func run() throws {
        threads.apply()
        let diffusion = format == .kohya || format == .lycoris || (format == .peft && InputKind.isDiffusionAdapter(source))
        let kind: OutputKind = format == .gguf ? .ggufAdapter : format == .kohya || format == .lycoris || (diffusion && output.hasSuffix(".safetensors")) ? SafetensorsWriter.outputKind : .directory
        try OutputPlan(path: output, kind: kind, replace: force, inputs: ([source, base] + sourceOptions.inputPaths).compactMap { $0 }).check()
        var adapter = try AdapterLoader.load(source, options: sourceOptions)
        // A LyCORIS file of one model (`lycoris_` keys, role "") is a language model's adapter: PEFT and
        // GGUF take it like any other; kohya and lycoris go through the kohya writer.
        let pipelineRoles = adapter.modules.contains { !($0.attributes["diffusion.role"] ?? "").isEmpty }
        if format == .kohya || format == .lycoris || pipelineRoles {
            try exportDiffusion(&adapter)
            return
        }
        // What GGUF needs is known before any conversion: fail before the work.
        var arch: String? = nil
        if format == .gguf {
            arch = architecture ?? Self.architecture(of: adapter)
            if arch == nil { throw CommandFailure("\(source): the adapter does not say its model architecture; give --architecture llama|mistral|qwen2|qwen3|gemma|phi3") }
        }
        // PEFT holds LoRA, LoKr, LoHa, AdaLoRA, VeRA and IA³ adapters as they are (when its config can
        // say so); everything else, and everything for GGUF, goes through the exact (lossless)
        // to-lora conversion first.
        var converted = 0
        let native = format == .peft ? Self.peftNative(adapter, output: output) : nil
        if native == nil, adapter.modules.contains(where: { if case .lowRank = $0.update { return false }; return true }) {
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
            o["peft_type"] = JSONValue(native ?? "LORA")
            if !json { Console.text("\(output): PEFT \(native ?? "LORA") adapter, \(adapter.modules.count) modules") }
        case .kohya, .lycoris:
            break  // exportDiffusion
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
    /// kohya and diffusers layouts of a diffusion adapter, named after `--base` when given.
    func exportDiffusion(_ adapter: inout Adapter) throws {
        guard format != .gguf else { throw CommandFailure("\(source): GGUF holds language-model adapters, not diffusion ones") }
        var rows: [String: Range<Int>] = [:]
        var modelBase: ModelBase? = nil
        if let base {
            let b = try ModelBase(path: base)
            guard b.layout != .checkpoint else { throw CommandFailure("\(base): not a diffusers pipeline directory or a single-file diffusion checkpoint") }
            rows = try DiffusionBinding.bind(&adapter, to: b, adapterPath: source).targets.compactMapValues(\.rows)
            modelBase = b
        }
        // LyCORIS files hold LoRA, LoCon, Tucker LoCon, LoHa, LoKr and full updates as they are; the
        // diffusers layout holds LoRA only: other forms are converted exactly first.
        let native: (AdapterModule) -> Bool = { m in
            switch (self.format, m.update) {
            case (.kohya, .lowRank), (.kohya, .convTucker), (.kohya, .kronecker), (.kohya, .dense), (.peft, .lowRank),
                 (.lycoris, .lowRank), (.lycoris, .convTucker), (.lycoris, .kronecker), (.lycoris, .dense): return true
            case (.kohya, .hadamard(let h)), (.lycoris, .hadamard(let h)):
                if case .full = h.p1 { return false }
                if case .full = h.p2 { return false }
                return true
            default: return false
            }
        }
        var converted = 0
        if adapter.modules.contains(where: { !native($0) }) {
            var subset = adapter
            subset.modules = adapter.modules.filter { !native($0) }
            let progress = ProgressLine("converting to LoRA")
            var options = ToLoRA.Options(target: .lossless)
            options.progress = progress.callback
            let (lora, summary) = try progress.during { try ToLoRA.convert(subset, options: options) }
            let byName = Dictionary(uniqueKeysWithValues: lora.modules.map { ($0.name, $0) })
            adapter.modules = adapter.modules.map { m in
                guard var c = byName[m.name] else { return m }
                c.attributes = m.attributes
                return c
            }
            converted = subset.modules.count
            Console.err("note: converted \(converted) modules to LoRA exactly (worst error \(Formatting.scientific(summary.worstError)))")
        }
        let names = DiffusionExport.names(adapter, base: modelBase, rows: rows)
        var o = JSONObject()
        o["output"] = JSONValue(output)
        o["source"] = JSONValue(source)
        o["format"] = JSONValue(format == .peft ? "diffusers" : format.rawValue)
        o["modules"] = JSONValue(adapter.modules.count)
        o["converted_to_lora"] = JSONValue(converted)
        o["base"] = base.map(JSONValue.init) ?? .null
        switch format {
        case .lycoris:
            // LyCORIS's own naming: `lycoris_` + the module path flattened; a module read from a
            // LyCORIS or kohya file keeps the key it had.
            for i in adapter.modules.indices where adapter.modules[i].attributes["kohya.prefix"] == nil {
                adapter.modules[i].attributes["kohya.prefix"] = "lycoris_"
                adapter.modules[i].attributes["diffusion.flat"] = ModuleNameIndex.flatten(adapter.modules[i].name)
            }
            let keys = try DiffusionExport.kohyaKeys(adapter, names: names, renamed: false, path: source)
            try DiffusionExport.writeKohya(adapter, keys: keys, to: output, overwrite: force)
            if !json { Console.text("\(output): LyCORIS adapter, \(adapter.modules.count) modules") }
        case .kohya:
            let keys = try DiffusionExport.kohyaKeys(adapter, names: names, renamed: modelBase != nil, path: source)
            try DiffusionExport.writeKohya(adapter, keys: keys, to: output, overwrite: force)
            if !json { Console.text("\(output): kohya/LyCORIS adapter, \(adapter.modules.count) modules") }
        default:
            if adapter.modules.contains(where: { $0.doraMagnitude != nil && $0.doraEpsilon != 0 }) {
                Console.err("note: PEFT's DoRA divides by the plain norm; LyCORIS added the magnitude's machine epsilon to it")
            }
            try DiffusionExport.writeDiffusers(adapter, names: names, to: output, overwrite: force)
            if !json { Console.text("\(output): diffusers LoRA (the layout load_lora_weights reads), \(adapter.modules.count) modules") }
        }
        if json { Console.out(JSONWriter.string(.object(o), indent: 2)) }
    }

    /// The PEFT type that holds the adapter as it is, when PEFT's config can describe it; nil when
    /// the adapter needs converting to LoRA (saying why on stderr when it holds a native kind).
    static func peftNative(_ adapter: Adapter, output: String) -> String? {
        guard let type = PEFTWriter.nativeType(of: adapter) else { return nil }
        do {
            _ = try PEFTWriter.layout(adapter, path: output)
            return type
        } catch {
            if type != "LORA" { Console.err("note: \(error); writing LoRA instead") }
            return nil
        }
    }

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
