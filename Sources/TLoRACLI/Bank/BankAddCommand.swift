import ArgumentParser
import TLoRAConvert
import TLoRAFormat
import TLoRAIO
import TLoRAModel

/// `tlora bank add BANK NEW… -o OUT [--rebuild]`.
struct BankAddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add members to a bank by projecting them onto its bases; refused above the bound unless --rebuild.",
        discussion: """
            Each new member's update is projected onto the existing bases of its modules (of the \
            cluster that holds it best) and its error is reported per module. Above the bound the \
            member is refused; --rebuild instead extends those bases with the directions it needs \
            (existing members are kept exactly as they were).
            """)

    @Argument(help: "The bank (.tlora).")
    var bank: String

    @Argument(help: "The new members, each PATH or NAME=PATH.")
    var members: [String]

    @Option(help: "The bound for the new members (default: the bank's own).")
    var maxRelError: Double?

    @Flag(help: "Extend the bases when a projection misses the bound, instead of refusing the member.")
    var rebuild = false

    @OptionGroup var output: ContainerOutputOptions

    @OptionGroup var sourceOptions: AdapterSourceOptions

    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        guard !members.isEmpty else { throw ValidationError("give at least one new member") }
        try ErrorTargetOptions.checkRange(maxRelError)
    }

    func run() throws {
        threads.apply()
        let arguments = members.map(BankMemberArgument.init)
        try output.check(inputs: [bank] + arguments.map(\.path) + sourceOptions.inputPaths)
        let file = try TLoRAFile(path: bank)
        guard file.isBank else { throw CommandFailure("\(bank): not an adapter bank; build one with tlora bank build") }
        var current = try file.loadBank()
        var reports: [BankAdd.Report] = []
        for argument in arguments {
            let source = try argument.load(options: sourceOptions)
            do {
                let (next, report) = try BankAdd.add(source, to: current, options: .init(maxRelativeError: maxRelError, rebuild: rebuild))
                current = next
                reports.append(report)
            } catch let e as ConvertError {
                throw CommandFailure("\(argument.path): \(e.message)")
            }
        }
        let written = try output.write(current)
        if output.json {
            Console.out(JSONWriter.string(.array(reports.map(Self.json)), indent: 2))
            return
        }
        for r in reports {
            let rows = r.lines.map { l -> [String] in
                [l.module, Formatting.scientific(l.projectedError), Formatting.scientific(l.error),
                 l.ranksBefore.map(Formatting.shape) ?? "new", Formatting.shape(l.ranksAfter)]
            }
            Console.text("\(r.member) (cluster \(r.cluster)):")
            Console.out(Formatting.table(header: ["module", "projected err", "stored err", "k before", "k after"], rows: rows, rightAligned: [1, 2]))
            Console.text("\(r.member): worst error \(Formatting.scientific(r.worstError))" + (r.bound.map { " (bound \(Formatting.scientific($0)))" } ?? "")
                + (r.extended ? "; bases extended, existing members unchanged" : "; projected onto the existing bases"))
        }
        Console.text("\(output.output): \(current.members.count) members, \(Formatting.bytes(written.fileLength))")
    }

    static func json(_ r: BankAdd.Report) -> JSONValue {
        .object(JSONObject([
            ("member", JSONValue(r.member)), ("cluster", JSONValue(r.cluster)), ("max_rel_error", r.bound.map { JSONValue($0) } ?? .null),
            ("extended", JSONValue(r.extended)), ("rel_error", JSONValue(r.worstError)),
            ("modules", .array(r.lines.map { l in
                .object(JSONObject([("name", JSONValue(l.module)), ("projected_rel_error", JSONValue(l.projectedError)),
                                    ("rel_error", JSONValue(l.error)), ("ranks_before", l.ranksBefore.map { JSONValue($0) } ?? .null),
                                    ("ranks_after", JSONValue(l.ranksAfter))]))
            })),
        ]))
    }
}
