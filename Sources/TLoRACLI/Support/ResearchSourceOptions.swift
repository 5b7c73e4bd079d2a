import ArgumentParser
import TLoRAInterop

/// What the research formats' bare state dicts do not record (docs/CLI.md, "Research formats").
struct ResearchSourceOptions: ParsableArguments {
    @Option(help: "Scale of a research adapter's update: TTLoRAMoE's alpha, TT2LoRA's scale, TensLoRA's scaling.")
    var alpha: Double?

    @Option(help: "TensLoRA construction: att, qkv, depth, att-qkv, att-depth, qkv-depth or att-qkv-depth.")
    var construction: String?

    @Option(help: "Remove this prefix from a research state dict's module names (e.g. model. of a Lightning checkpoint).")
    var stripPrefix: String?

    @Option(help: "Which TTLoRAMoE wrapper wrote a TT-LoRA state dict: contraction or reconstruction (needed when the shapes fit both).")
    var ttloraLayout: TTLoRALayout?

    func validate() throws {
        if let a = alpha, !a.isFinite { throw ValidationError("--alpha must be a finite number") }
    }

    /// The options, with the base weights' shapes read from `base` (a checkpoint directory or a
    /// single safetensors file) when one is given.
    func resolved(base: String?) throws -> ResearchOptions {
        ResearchOptions(alpha: alpha, construction: construction, stripPrefix: stripPrefix, baseShapes: try base.flatMap(BaseShapes.of(base:)),
                        ttLoRALayout: ttloraLayout)
    }
}

extension TTLoRALayout: ExpressibleByArgument {}
