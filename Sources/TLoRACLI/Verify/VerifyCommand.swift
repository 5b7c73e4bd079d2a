import ArgumentParser
import TLoRAConvert
import TLoRAFormat
import TLoRAIO
import TLoRAInputs

/// `tlora verify FILE` (integrity) and `tlora verify CANDIDATE --against REFERENCE` (error).
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a .tlora file's every checksum and rule, or measure a candidate's error against a reference (exit 3 on a problem).")

    @Argument(help: "The .tlora file to check, or the candidate adapter.")
    var file: String

    @Option(help: "A reference adapter: report each module's and group's relative Frobenius error.")
    var against: String?

    @OptionGroup var sourceOptions: AdapterSourceOptions

    @Option(help: "With --against: exit 3 when any error exceeds E.")
    var maxRelError: Double?

    @Flag(help: "Print one JSON document.")
    var json = false

    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        if maxRelError != nil && against == nil { throw ValidationError("--max-rel-error needs --against") }
        try ErrorTargetOptions.checkRange(maxRelError)
    }

    func run() throws {
        threads.apply()
        if let against { try compare(reference: against) } else { try integrity() }
    }

    private func integrity() throws {
        try Self.requireContainer(file)
        let report = TLoRAFile.verify(path: file)
        if json {
            var o = JSONObject()
            o["path"] = JSONValue(file)
            o["intact"] = JSONValue(report.isIntact)
            o["tensors_checked"] = JSONValue(report.tensorsChecked)
            o["bytes_checked"] = JSONValue(report.bytesChecked)
            o["problems"] = JSONValue(report.problems.map(\.description))
            Console.out(JSONWriter.string(.object(o), indent: 2))
        } else if report.isIntact {
            Console.text("\(file): OK (\(report.tensorsChecked) tensors, \(Formatting.bytes(report.bytesChecked)) checked)")
        } else {
            for p in report.problems { Console.err("error: \(p.description)") }
        }
        if !report.isIntact { throw ExitStatus(code: 3) }
    }

    private func compare(reference: String) throws {
        let candidate = try AdapterLoader.load(file, options: sourceOptions)
        let ref = try AdapterLoader.load(reference, options: sourceOptions)
        let result = try AdapterComparison.compare(candidate: candidate, reference: ref)
        let limit = maxRelError ?? .infinity
        // A NaN error (a NaN in an adapter) is above every limit.
        let failing = result.entries.filter { $0.boundApplies && !($0.relativeError <= limit) }
        let missing = !result.onlyInCandidate.isEmpty || !result.onlyInReference.isEmpty
        if json {
            var o = JSONObject()
            o["candidate"] = JSONValue(file)
            o["reference"] = JSONValue(reference)
            o["max_rel_error"] = maxRelError.map(JSONValue.init) ?? .null
            o["worst_rel_error"] = JSONValue(result.worst)
            o["passed"] = JSONValue(failing.isEmpty && !missing)
            o["entries"] = .array(result.entries.map { e in
                .object(JSONObject([("name", JSONValue(e.name)), ("kind", JSONValue(e.kind.rawValue)), ("rel_error", JSONValue(e.relativeError)),
                                    ("reference_norm", JSONValue(e.referenceNorm)), ("bound_applies", JSONValue(e.boundApplies)),
                                    ("note", e.note.map(JSONValue.init) ?? .null)]))
            })
            o["only_in_candidate"] = JSONValue(result.onlyInCandidate)
            o["only_in_reference"] = JSONValue(result.onlyInReference)
            Console.out(JSONWriter.string(.object(o), indent: 2))
        } else {
            let rows = result.entries.map { e in
                [e.name, e.kind.rawValue, Formatting.scientific(e.relativeError), Formatting.scientific(e.referenceNorm),
                 e.boundApplies && !(e.relativeError <= limit) ? (limit.isFinite ? "ABOVE \(Formatting.scientific(limit))" : "NOT FINITE") : "", e.note ?? ""]
            }
            Console.text(Formatting.table(header: ["name", "kind", "rel.error", "‖reference‖", "", "how"], rows: rows, rightAligned: [2, 3]))
            for n in result.onlyInCandidate { Console.text("only in \(file): \(n)") }
            for n in result.onlyInReference { Console.text("only in \(reference): \(n)") }
            Console.text("worst relative error \(Formatting.scientific(result.worst))" + (maxRelError.map { " (limit \(Formatting.scientific($0)))" } ?? ""))
        }
        if !failing.isEmpty || missing {
            if !json {
                Console.err("error: \(file): \(failing.count) of \(result.entries.count) entries "
                    + (limit.isFinite ? "exceed \(Formatting.scientific(limit))" : "have no finite error (NaN or infinite values)")
                    + (missing ? "; modules differ between the adapters" : ""))
            }
            throw ExitStatus(code: 3)
        }
    }
}

extension VerifyCommand {
    /// `verify FILE` checks `.tlora` files: exit 3 means a damaged one, so anything else is refused
    /// with exit 1 and what verify accepts. A file that is no known format but is named `.tlora`
    /// is checked (and reported damaged): its magic may be what broke.
    static func requireContainer(_ path: String) throws {
        let kind: InputKind
        do {
            kind = try InputKind.detect(path)
        } catch let e as IOError {
            throw e
        } catch {
            if pathKind(path) == .file && path.hasSuffix(".tlora") { return }
            throw CommandFailure("\(path): not a .tlora file; `tlora verify FILE` checks .tlora files, and "
                + "`tlora verify CANDIDATE --against REFERENCE` compares any two adapters")
        }
        guard kind != .tlora else { return }
        throw CommandFailure("\(path): this is \(kind.noun), not a .tlora file; `tlora verify FILE` checks .tlora files "
            + "(convert it with `tlora convert import`), and `tlora verify CANDIDATE --against REFERENCE` compares any two adapters")
    }
}
