import ArgumentParser
import TLoRAFormat
import TLoRAIO

/// `tlora verify FILE`: integrity of a .tlora file.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a .tlora file's every checksum and structural rule (exit 3 on any problem).")

    @Argument(help: "The .tlora file to check.")
    var file: String

    @Flag(help: "Print one JSON document.")
    var json = false

    func run() throws {
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
            Console.out("\(file): OK (\(report.tensorsChecked) tensors, \(Formatting.bytes(report.bytesChecked)) checked)")
        } else {
            for p in report.problems { Console.err("error: \(p.description)") }
        }
        if !report.isIntact { throw ExitStatus(code: 3) }
    }
}
