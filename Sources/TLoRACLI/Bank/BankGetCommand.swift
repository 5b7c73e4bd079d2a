import ArgumentParser
import TLoRAConvert
import TLoRAFormat
import TLoRAInputs
import TLoRAInterop
import TLoRAIO
import TLoRAModel

/// `tlora bank get BANK --member NAME -o OUT [--format peft|tlora]`.
struct BankGetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Write one member of a bank as an ordinary adapter (a LoRA of the shared rank).",
        discussion: "Reads only that member's cores and the bases they use.")

    @Argument(help: "An adapter bank (.tlora).")
    var bank: String

    @Option(help: "The member's name (tlora inspect BANK lists them).")
    var member: String

    @Option(help: "Output: a .tlora file or a PEFT directory.")
    var format: LoRAOutputFormat = .tlora

    @Option(help: "Storage dtype of the factors (default: the bank's).")
    var dtype: StorageDType?

    @OptionGroup var output: ContainerOutputOptions

    @OptionGroup var threads: ThreadOptions

    func run() throws {
        threads.apply()
        try output.check(kind: format.outputKind, inputs: [bank])
        let file = try TLoRAFile(path: bank)
        guard file.isBank else { throw InputError.notABank(path: bank) }
        let adapter = try file.loadBankMember(member, dtype: dtype?.dtype)
        let bytes = try output.write(adapter, as: format)
        let ranks = Set(adapter.modules.compactMap { m -> Int? in if case .lowRank(let a, _) = m.update { return a.shape[0] }; return nil }).sorted()
        let worst = adapter.modules.compactMap { $0.conversion?.relativeError }.max()
        if output.json {
            var o = JSONObject()
            o["output"] = JSONValue(output.output)
            o["bank"] = JSONValue(bank)
            o["member"] = JSONValue(member)
            o["format"] = JSONValue(format.rawValue)
            o["modules"] = JSONValue(adapter.modules.count)
            o["ranks"] = JSONValue(ranks)
            o["bytes"] = JSONValue(bytes)
            o["worst_rel_error"] = worst.map(JSONValue.init) ?? .null
            Console.out(JSONWriter.string(.object(o), indent: 2))
            return
        }
        Console.text("\(output.output): member \(member), \(adapter.modules.count) modules as LoRA of rank \(ranks.map(String.init).joined(separator: ",")), "
            + "\(Formatting.bytes(bytes))" + (worst.map { "; worst error against the member's own update \(Formatting.scientific($0))" } ?? ""))
    }
}
