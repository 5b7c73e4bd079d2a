// merge-adapter ADAPTER BASE OUTPUT: merges any adapter tlora reads (PEFT, MLX-LM, GGUF, .tlora,
// research state dicts) into a Hugging Face checkpoint directory and writes the merged checkpoint.
import Glibc
import TLoRA

let arguments = CommandLine.arguments
guard arguments.count == 4 else { print("usage: merge-adapter ADAPTER BASE OUTPUT"); exit(2) }
let (adapterPath, basePath, output) = (arguments[1], arguments[2], arguments[3])
do {
    let adapter = try AdapterLoader.load(adapterPath, base: basePath)  // GGUF head counts etc. from the base
    let report = try Merger.merge(adapter: adapter, adapterPath: adapterPath, base: try Checkpoint(path: basePath), output: output)
    print("\(output): \(report.updatedTensors) tensors updated, \(report.copiedTensors) copied")
} catch {
    print("error: \(error)")
    exit(1)
}
