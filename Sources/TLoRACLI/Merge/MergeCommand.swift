import ArgumentParser
import TLoRAConvert
import TLoRAMerge
import TLoRAInputs
import TLoRAInterop
import TLoRANumerics

/// `tlora merge ADAPTER --base BASE -o OUT`.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge an adapter into a base checkpoint and write a checkpoint directory transformers loads.")

    enum OutputDType: String, ExpressibleByArgument, CaseIterable {
        case keep, f32, f16, bf16
    }

    @Argument(help: "Any supported adapter (PEFT, MLX-LM, GGUF, .tlora).")
    var adapter: String

    @Option(help: "The base checkpoint directory (model.safetensors or sharded with model.safetensors.index.json).")
    var base: String

    @Option(name: [.short, .customLong("output")], help: "The output directory.")
    var output: String

    @Option(help: "Multiply every update by this factor.")
    var scale: Double = 1

    @Option(help: "Output dtype for floating tensors: keep (the base's), f32, f16 or bf16.")
    var dtype: OutputDType = .keep

    @Flag(help: "Replace the output directory if it exists.")
    var force = false

    @OptionGroup var research: ResearchSourceOptions

    func validate() throws {
        guard scale.isFinite else { throw ValidationError("--scale must be a finite number") }
    }

    func run() throws {
        try InputKind.requireBase(base)
        let checkpoint = try Checkpoint(path: base)
        let progress = ProgressLine("merging", total: 100)
        let options = MergeOptions(dtype: dtype == .keep ? nil : DType(rawValue: dtype.rawValue), scale: scale, overwrite: force) { done, total in
            progress.update(done * 100 / max(total, 1))
        }
        try Merger.outputPlan(adapterPath: adapter, base: checkpoint, output: output, options: options).check()
        // GGUF adapters of Llama-family models need head counts: the base's config has them.
        // Research state dicts take their layer shapes from the base too.
        let loaded = try AdapterLoader.load(adapter, base: base, research: try research.resolved(base: nil))
        let report = try Merger.merge(adapter: loaded, adapterPath: adapter, base: checkpoint, output: output, options: options)
        progress.finish()
        Console.out("\(output): \(report.updatedTensors) tensors updated, \(report.replacedTensors) replaced, \(report.copiedTensors) copied "
            + "in \(report.shards) shard\(report.shards == 1 ? "" : "s") (\(Formatting.bytes(report.bytesWritten))); copied \(report.copiedFiles.joined(separator: ", "))")
    }
}
