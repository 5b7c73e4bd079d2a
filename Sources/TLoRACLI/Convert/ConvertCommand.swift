import ArgumentParser

/// `tlora convert …`: the conversions.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert adapters: import losslessly, to tensor-train or Tucker form, or back to LoRA.",
        subcommands: [ImportCommand.self, DenseToTTCommand.self, DenseToTuckerCommand.self, ToLoRACommand.self])
}
