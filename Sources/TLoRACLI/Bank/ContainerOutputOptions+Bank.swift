import TLoRAFormat
import TLoRAModel

extension ContainerOutputOptions {
    /// Writes `bank` as a `.tlora` file, with a progress line while tensors are encoded.
    func write(_ bank: AdapterBank) throws -> WriteReport {
        let progress = ProgressLine("writing")
        defer { progress.finish() }
        var options = writeOptions
        options.progress = progress.callback
        return try ContainerWriter.write(bank, to: output, options: options)
    }
}
