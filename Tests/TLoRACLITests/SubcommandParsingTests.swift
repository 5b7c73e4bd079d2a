import Testing
import _TLoRATestSupport

/// ArgumentParser checks a command's declarations (e.g. two options with one name) only in debug
/// builds and only when that command is parsed: parse every subcommand once.
@Suite struct SubcommandParsingTests {
    static let subcommands = [["inspect"], ["convert", "import"], ["convert", "dense-to-tt"], ["convert", "dense-to-tucker"],
                              ["convert", "to-lora"], ["export"], ["merge"], ["verify"]]

    @Test(arguments: subcommands)
    func helpParses(command: [String]) throws {
        let r = try CommandRunner.tlora(command + ["--help"])
        #expect(r.status == 0, "\(command): \(r.stderr)")
        #expect(r.stdout.contains("USAGE: tlora \(command.joined(separator: " "))"), "\(r.stdout)")
    }
}
