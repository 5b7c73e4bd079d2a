import ArgumentParser
import TLoRAConvert
import TLoRAMerge
import TLoRAInputs
import TLoRAInterop
import TLoRAIO
import TLoRANumerics

/// `tlora merge ADAPTER --base BASE -o OUT`.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge an adapter into a base checkpoint and write a checkpoint directory transformers loads.")

    enum OutputDType: String, ExpressibleByArgument, CaseIterable {
        case keep, f32, f16, bf16
    }

    @Argument(help: "Any supported adapter: a PEFT or MLX-LM directory, a GGUF adapter, a .tlora file, or a TT-LoRA, TensorGuide or TensLoRA state dict (give --alpha).")
    var adapter: String

    @Option(help: "The base checkpoint directory (model.safetensors or sharded with model.safetensors.index.json).")
    var base: String

    @Option(name: [.short, .customLong("output")], help: "The output directory.")
    var output: String

    @Option(help: "Multiply every update by this factor.")
    var scale: Double = 1

    @Option(help: "Output dtype for floating tensors: keep (the base's), f32, f16 or bf16.")
    var dtype: OutputDType = .keep

    @Flag(help: "Replace the output directory if it exists (only one tlora wrote).")
    var force = false

    @Flag(help: "Check everything and show what would change; write nothing.")
    var dryRun = false

    @Flag(help: "Print the summary as one JSON document on stdout.")
    var json = false

    @OptionGroup var research: ResearchSourceOptions

    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        guard scale.isFinite else { throw ValidationError("--scale must be a finite number") }
    }

    func run() throws {
        threads.apply()
        try InputKind.requireBase(base)
        let checkpoint = try Checkpoint(path: base)
        let progress = ProgressLine("merging")
        let options = MergeOptions(dtype: dtype == .keep ? nil : DType(rawValue: dtype.rawValue), scale: scale, overwrite: force,
                                   progress: dryRun ? nil : progress.callback)
        try Merger.outputPlan(adapterPath: adapter, base: checkpoint, output: output, options: options).check(writing: !dryRun)
        // GGUF adapters of Llama-family models need head counts: the base's config has them.
        // Research state dicts take their layer shapes from the base too.
        let loaded = try AdapterLoader.load(adapter, base: base, research: try research.resolved(base: nil))
        let report = try progress.during {
            dryRun ? try Merger.preview(adapter: loaded, adapterPath: adapter, base: checkpoint, output: output, options: options)
                : try Merger.merge(adapter: loaded, adapterPath: adapter, base: checkpoint, output: output, options: options)
        }
        if json {
            Console.out(JSONWriter.string(.object(document(report)), indent: 2))
            return
        }
        if dryRun {
            Console.text(Formatting.table(header: ["base tensor", "would be", "by module"],
                                          rows: report.changes.map { [$0.tensor, $0.action, $0.module ?? "-"] }, rightAligned: []))
            Console.text("\(output): dry run, nothing written: would update \(report.updatedTensors) tensors, replace \(report.replacedTensors), "
                + "copy \(report.copiedTensors) in \(report.shards) shard\(report.shards == 1 ? "" : "s") (\(Formatting.bytes(report.bytesWritten))); "
                + "would copy \(report.copiedFiles.joined(separator: ", "))")
            return
        }
        Console.text("\(output): \(report.updatedTensors) tensors updated, \(report.replacedTensors) replaced, \(report.copiedTensors) copied "
            + "in \(report.shards) shard\(report.shards == 1 ? "" : "s") (\(Formatting.bytes(report.bytesWritten))); copied \(report.copiedFiles.joined(separator: ", "))")
    }

    func document(_ report: MergeReport) -> JSONObject {
        var o = JSONObject()
        o["output"] = JSONValue(output)
        o["adapter"] = JSONValue(adapter)
        o["base"] = JSONValue(base)
        o["dry_run"] = JSONValue(dryRun)
        o["updated_tensors"] = JSONValue(report.updatedTensors)
        o["replaced_tensors"] = JSONValue(report.replacedTensors)
        o["copied_tensors"] = JSONValue(report.copiedTensors)
        o["shards"] = JSONValue(report.shards)
        o[dryRun ? "bytes_to_write" : "bytes_written"] = JSONValue(report.bytesWritten)
        o["copied_files"] = JSONValue(report.copiedFiles)
        o["changes"] = .array(report.changes.map { c in
            .object(JSONObject([("tensor", JSONValue(c.tensor)), ("action", JSONValue(c.action)), ("module", c.module.map(JSONValue.init) ?? .null)]))
        })
        return o
    }
}
