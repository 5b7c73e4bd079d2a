import ArgumentParser
import TLoRAConvert
import TLoRAMerge
import TLoRAInputs
import TLoRAInterop
import TLoRAIO
import TLoRANumerics

/// `tlora merge ADAPTER… --base BASE -o OUT [--weights …]`.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge adapters into a base and write the base's own layout: a checkpoint directory, a diffusers pipeline directory or a single file.",
        discussion: """
            Several adapters merge in one pass, in the order given: every base tensor is read once, \
            gets each adapter's update (times its --weights entry) in f32 and is rounded once. On an \
            f32 base that equals merging them one after the other. Every adapter is checked against \
            the base before anything is written.
            """)

    enum OutputDType: String, ExpressibleByArgument, CaseIterable {
        case keep, f32, f16, bf16
    }

    @Argument(help: "One or more adapters, each any supported one: a PEFT or MLX-LM directory, a GGUF adapter, a .tlora file, a kohya, LyCORIS or diffusers LoRA, or a TT-LoRA, TensorGuide or TensLoRA state dict (give --alpha).")
    var adapters: [String]

    @Option(help: "The base: a checkpoint directory (model.safetensors or shards listed in model.safetensors.index.json), a diffusers pipeline directory (model_index.json) or a single .safetensors file.")
    var base: String

    @Option(name: [.short, .customLong("output")], help: "The output: a directory for a checkpoint or pipeline base, a file for a single-file base.")
    var output: String

    @Option(help: "For an adapter bank (one adapter argument): the member to merge.")
    var member: String?

    @Option(help: "One weight per adapter, comma-separated: multiplies that adapter's updates (default 1 each).")
    var weights: String?

    @Option(help: "Multiply every update by this factor.")
    var scale: Double = 1

    @Option(help: "Output dtype for floating tensors: keep (the base's), f32, f16 or bf16.")
    var dtype: OutputDType = .keep

    @Flag(help: "Replace the output if it exists (only one tlora wrote).")
    var force = false

    @Flag(help: "Merge the modules whose names match the base and report the others, instead of refusing the adapter.")
    var skipUnmatched = false

    @Flag(help: "Check everything and show what would change; write nothing.")
    var dryRun = false

    @Flag(help: "Print the summary as one JSON document on stdout.")
    var json = false

    @OptionGroup var research: ResearchSourceOptions

    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        guard scale.isFinite else { throw ValidationError("--scale must be a finite number") }
        guard !adapters.isEmpty else { throw ValidationError("give at least one adapter") }
        if member != nil && adapters.count > 1 { throw ValidationError("--member applies to one adapter bank; merge several members with `tlora bank get` first") }
        _ = try WeightList.parse(weights, adapters: adapters.count)
    }

    func run() throws {
        threads.apply()
        try InputKind.requireBase(base)
        let modelBase = try ModelBase(path: base)
        let progress = ProgressLine("merging")
        let options = MergeOptions(dtype: dtype == .keep ? nil : DType(rawValue: dtype.rawValue), scale: scale, overwrite: force,
                                   progress: dryRun ? nil : progress.callback)
        try Merger.outputPlan(adapterPaths: adapters, base: modelBase, output: output, options: options).check(writing: !dryRun)
        let weights = try WeightList.parse(self.weights, adapters: adapters.count) ?? adapters.map { _ in 1 }
        var inputs: [MergeInput] = []
        var unmatched: [String] = []
        for (adapter, weight) in zip(adapters, weights) {
            // GGUF adapters of Llama-family models need head counts: the base's config has them.
            // Research state dicts take their layer shapes from the base too.
            var loaded = try AdapterLoader.load(adapter, base: base, research: try research.resolved(base: nil), member: member)
            // kohya, LyCORIS and diffusers names are looked up among the base's own; nothing is written
            // when some match nothing, unless --skip-unmatched.
            let binding = try DiffusionBinding.bind(&loaded, to: modelBase, adapterPath: adapter, skipUnmatched: skipUnmatched)
            inputs.append(MergeInput(adapter: loaded, path: adapter, weight: weight, rows: binding.targets.compactMapValues(\.rows)))
            unmatched += binding.skipped.map { adapters.count > 1 ? "\(adapter): \($0)" : $0 }
        }
        var report = try progress.during {
            dryRun ? try Merger.preview(inputs, base: modelBase, output: output, options: options)
                : try Merger.merge(inputs, base: modelBase, output: output, options: options)
        }
        report.skippedModules = unmatched
        if json {
            Console.out(JSONWriter.string(.object(document(report)), indent: 2))
            return
        }
        let skipped = report.skippedModules.isEmpty ? ""
            : "; skipped \(report.skippedModules.count) modules whose names match nothing in the base: \(report.skippedModules.joined(separator: ", "))"
        let rewrote = report.rewrittenComponents.isEmpty ? "" : "; rewrote \(report.rewrittenComponents.joined(separator: ", "))"
        let files = "\(report.shards) weight file\(report.shards == 1 ? "" : "s")"
        // A single-file output has no other files to copy.
        let others = report.copiedFiles.joined(separator: ", ")
        if dryRun {
            Console.text(Formatting.table(header: ["base tensor", "would be", "by module"],
                                          rows: report.changes.map { [$0.tensor, $0.action, $0.module ?? "-"] }, rightAligned: []))
            Console.text("\(output): dry run, nothing written: would update \(report.updatedTensors) tensors, replace \(report.replacedTensors), "
                + "copy \(report.copiedTensors) in \(files) (\(Formatting.bytes(report.bytesWritten)))\(rewrote)"
                + (others.isEmpty ? "" : "; would copy \(others)") + skipped)
            return
        }
        Console.text("\(output): \(report.updatedTensors) tensors updated, \(report.replacedTensors) replaced, \(report.copiedTensors) copied "
            + "in \(files) (\(Formatting.bytes(report.bytesWritten)))\(rewrote)" + (others.isEmpty ? "" : "; copied \(others)") + skipped)
    }

    func document(_ report: MergeReport) -> JSONObject {
        var o = JSONObject()
        o["output"] = JSONValue(output)
        if adapters.count == 1 { o["adapter"] = JSONValue(adapters[0]) }
        o["adapters"] = JSONValue(adapters)
        let weights = ((try? WeightList.parse(self.weights, adapters: adapters.count)) ?? nil) ?? adapters.map { _ in 1.0 }
        o["weights"] = .array(weights.map { JSONValue($0) })
        o["base"] = JSONValue(base)
        o["dry_run"] = JSONValue(dryRun)
        o["updated_tensors"] = JSONValue(report.updatedTensors)
        o["replaced_tensors"] = JSONValue(report.replacedTensors)
        o["copied_tensors"] = JSONValue(report.copiedTensors)
        o["shards"] = JSONValue(report.shards)
        o[dryRun ? "bytes_to_write" : "bytes_written"] = JSONValue(report.bytesWritten)
        o["copied_files"] = JSONValue(report.copiedFiles)
        o["rewritten_components"] = JSONValue(report.rewrittenComponents)
        o["skipped_modules"] = JSONValue(report.skippedModules)
        o["changes"] = .array(report.changes.map { c in
            .object(JSONObject([("tensor", JSONValue(c.tensor)), ("action", JSONValue(c.action)), ("module", c.module.map(JSONValue.init) ?? .null)]))
        })
        return o
    }
}
