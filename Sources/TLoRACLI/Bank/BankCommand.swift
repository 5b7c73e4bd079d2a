import ArgumentParser

/// `tlora bank …`: many adapters of one base in one file, with shared bases.
struct BankCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bank",
        abstract: "Adapter banks: many adapters of one base in one file, with shared bases and a per-member error bound.",
        subcommands: [BankBuildCommand.self, BankGetCommand.self, BankAddCommand.self])
}
