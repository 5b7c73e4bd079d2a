import ArgumentParser
import TLoRAInterop
import TLoRAInputs
import TLoRAModel

/// What reading some adapters needs beyond the file: llama.cpp permutes q/k factors by attention
/// heads, so GGUF adapters of Llama-family models need the head counts (from the base model's
/// config, or given).
struct AdapterSourceOptions: ParsableArguments {
    @Option(name: .customLong("base-config"), help: "A base model directory or its config.json: head counts for GGUF adapters and att groups, layer shapes for research state dicts.")
    var baseConfig: String?

    @Option(help: "Attention (query) heads: GGUF adapters of Llama/Mistral models need them, dense-to-tucker's att groups split by them.")
    var heads: Int?

    @Option(help: "Key/value heads of grouped-query attention (default: --heads for GGUF; for dense-to-tucker, what k/v outputs hold at the query's head size).")
    var kvHeads: Int?

    @OptionGroup var research: ResearchSourceOptions

    /// The paths these options make a command read.
    var inputPaths: [String?] { [baseConfig] }

    func validate() throws {
        if let h = heads, h < 1 { throw ValidationError("--heads must be at least 1") }
        if let k = kvHeads, k < 1 { throw ValidationError("--kv-heads must be at least 1") }
        if kvHeads != nil && heads == nil { throw ValidationError("--kv-heads needs --heads") }
    }

    /// Research-format options with the base's layer shapes from `--base-config`.
    func resolvedResearch() throws -> ResearchOptions { try research.resolved(base: baseConfig) }

    func resolvedHeads() throws -> GGUFAdapter.Heads? {
        if let h = heads { return GGUFAdapter.Heads(attention: h, keyValue: kvHeads ?? h) }
        guard let path = baseConfig else { return nil }
        return try GGUFAdapter.Heads(configAt: path)
    }
}

extension AdapterLoader {
    /// Reads an adapter with what the command line says about it.
    static func load(_ path: String, options: AdapterSourceOptions) throws -> Adapter {
        if let b = options.baseConfig { try InputKind.requireBaseConfig(b) }
        return try load(path, heads: try options.resolvedHeads(), research: try options.resolvedResearch())
    }
}
