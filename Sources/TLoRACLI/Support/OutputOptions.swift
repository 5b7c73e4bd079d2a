import ArgumentParser
import TLoRAFormat
import TLoRAInterop
import TLoRAIO
import TLoRAModel

/// Options shared by the convert commands: where and how the result is written, and how it is reported.
struct ContainerOutputOptions: ParsableArguments {
    @Option(name: [.short, .customLong("output")], help: "The output path.")
    var output: String

    @Flag(help: "Replace the output if it exists.")
    var force = false

    @Option(help: "Codec for every tensor: auto (smallest of bytegroup-zstd and raw), raw, zstd, bytegroup-zstd.")
    var codec: CodecOption = .auto

    @Option(help: "zstd level, 1-22, for every byte plane that compresses (19 or more: the smallest file). Default: 1, and 19 on the smallest compressible planes up to 1 MiB in total.")
    var level: Int32?

    @Flag(help: "Print the summary as one JSON document on stdout.")
    var json = false

    func validate() throws {
        if let level, !(1...22).contains(level) { throw ValidationError("--level must be between 1 and 22") }
    }

    /// Checks the output before any work (`OutputPlan`: not an input, not inside or around one,
    /// replaced only with --force and only if tlora wrote it, a writable folder).
    func check(kind: OutputKind = .tloraFile, inputs: [String?]) throws {
        try OutputPlan(path: output, kind: kind, replace: force, inputs: inputs.compactMap { $0 }).check()
    }

    var writeOptions: WriteOptions {
        WriteOptions(codec: codec.choice, level: level, overwrite: force)
    }

    /// Writes `adapter` as a `.tlora` file, with a progress line while tensors are encoded.
    func write(_ adapter: Adapter) throws -> WriteReport {
        let progress = ProgressLine("writing")
        defer { progress.finish() }
        var options = writeOptions
        options.progress = progress.callback
        return try ContainerWriter.write(adapter, to: output, options: options)
    }
}

/// `--format tlora|peft` of the commands that write a LoRA adapter.
enum LoRAOutputFormat: String, ExpressibleByArgument, CaseIterable {
    case tlora, peft

    var outputKind: OutputKind { self == .peft ? .directory : .tloraFile }
}

extension ContainerOutputOptions {
    /// Writes `adapter` as a `.tlora` file or a PEFT directory; returns the bytes written.
    func write(_ adapter: Adapter, as format: LoRAOutputFormat) throws -> Int {
        switch format {
        case .tlora:
            return try write(adapter).fileLength
        case .peft:
            try PEFTWriter.write(adapter, to: output, overwrite: force)
            return try directorySize(output)
        }
    }
}

enum CodecOption: String, ExpressibleByArgument, CaseIterable {
    case auto, raw, zstd
    case bytegroupZstd = "bytegroup-zstd"

    var choice: CodecChoice {
        switch self {
        case .auto: return .automatic
        case .raw: return .forced(.raw)
        case .zstd: return .forced(.zstd)
        case .bytegroupZstd: return .forced(.bytegroupZstd)
        }
    }
}
