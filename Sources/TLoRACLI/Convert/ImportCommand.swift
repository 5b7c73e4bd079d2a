import ArgumentParser
import TLoRAFormat
import TLoRAInputs
import TLoRAModel

/// `tlora convert import SRC -o OUT.tlora`: a foreign adapter into the container, losslessly.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Store any supported adapter in a .tlora file, bit for bit.")

    @Argument(help: "A PEFT or MLX-LM adapter directory, a GGUF adapter or a .tlora file.")
    var source: String

    @OptionGroup var output: ContainerOutputOptions

    @OptionGroup var sourceOptions: AdapterSourceOptions

    func run() throws {
        try output.check(inputs: [source] + sourceOptions.inputPaths)
        let adapter = try AdapterLoader.load(source, options: sourceOptions)
        let report = try ContainerWriter.write(adapter, to: output.output, options: output.writeOptions)
        let stored = report.tensors.reduce(0) { $0 + $1.length }
        let parameters = report.tensors.reduce(0) { $0 + $1.elementCount }
        Console.out("\(output.output): \(adapter.modules.count) modules; " + Formatting.storage(stored: stored, parameters: parameters, file: report.fileLength)
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
