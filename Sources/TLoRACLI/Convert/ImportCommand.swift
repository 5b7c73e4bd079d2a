import ArgumentParser
import TLoRAFormat
import TLoRAInputs
import TLoRAIO
import TLoRAModel

/// `tlora convert import SRC -o OUT.tlora`: a foreign adapter into the container, losslessly.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Store any supported adapter in a .tlora file, bit for bit.")

    @Argument(help: "Any supported adapter: a PEFT or MLX-LM directory, a GGUF adapter, a .tlora file, or a TT-LoRA, TensorGuide or TensLoRA state dict (give --alpha).")
    var source: String

    @OptionGroup var output: ContainerOutputOptions

    @OptionGroup var sourceOptions: AdapterSourceOptions

    @OptionGroup var threads: ThreadOptions

    func run() throws {
        threads.apply()
        try output.check(inputs: [source] + sourceOptions.inputPaths)
        let adapter = try AdapterLoader.load(source, options: sourceOptions)
        let report = try output.write(adapter)
        let stored = report.tensors.reduce(0) { $0 + $1.length }
        let parameters = report.tensors.reduce(0) { $0 + $1.elementCount }
        if output.json {
            var o = JSONObject()
            o["output"] = JSONValue(output.output)
            o["source"] = JSONValue(source)
            o["modules"] = JSONValue(adapter.modules.count)
            o["parameters"] = JSONValue(parameters)
            o["stored_bytes"] = JSONValue(stored)
            o["ratio_vs_f32"] = Formatting.ratioToF32(stored: stored, parameters: parameters).map(JSONValue.init) ?? .null
            o["file_bytes"] = JSONValue(report.fileLength)
            o["source_tensor_bytes"] = JSONValue(adapter.rawByteCount)
            Console.out(JSONWriter.string(.object(o), indent: 2))
            return
        }
        Console.text("\(output.output): \(adapter.modules.count) modules; " + Formatting.storage(stored: stored, parameters: parameters, file: report.fileLength)
            + "; the source's tensors \(Formatting.bytes(adapter.rawByteCount))")
    }
}

extension Adapter {
    /// Bytes of all tensor data as stored in memory (the source's dtypes, uncompressed).
    var rawByteCount: Int {
        var n = replacedTensors.reduce(0) { $0 + $1.value.bytes.count }
        for g in tuckerGroups { n += g.core.bytes.count + g.factors.reduce(0) { $0 + $1.bytes.count } }
        for p in projections { n += p.a.bytes.count + p.b.bytes.count }
        for m in modules {
            n += (m.update.tensors + [m.doraMagnitude, m.biasDelta].compactMap { $0 }).reduce(0) { $0 + $1.bytes.count }
        }
        return n
    }
}
