import ArgumentParser
import TLoRAConvert
import TLoRAFormat
import TLoRAInterop
import TLoRAIO
import TLoRAModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `tlora` command line (docs/CLI.md).
public struct TLoRACommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "tlora",
        abstract: "Tensorized LoRA adapters: inspect, convert, merge and verify.",
        discussion: """
            Exit codes: 0 success; 1 failure (one line `error: …` on stderr); 2 usage error; \
            3 verification found an error above the threshold or a corruption.
            """,
        version: "0.1.0",
        subcommands: [InspectCommand.self, ConvertCommand.self, ExportCommand.self, MergeCommand.self, ExtractCommand.self, CombineCommand.self, VerifyCommand.self, BankCommand.self]
    )

    public init() {}

    /// Process-wide setup for the executable, before any other thread starts: a closed pipe is an
    /// error to report, not a reason to die; SIGINT, SIGTERM and SIGHUP remove the temporaries
    /// being written before the process ends (`TerminationCleanup`).
    public static func prepareProcess() {
        signal(SIGPIPE, SIG_IGN)
        TerminationCleanup.install()
    }

    /// Parses `arguments` (without the program name), runs the command, and returns the exit status.
    public static func main(arguments: [String]) -> Int32 {
        if let problem = EnvironmentCheck.problem() {
            Console.err("Error: \(problem)")
            return 2
        }
        let command: ParsableCommand
        do {
            command = try parseAsRoot(arguments)
        } catch {
            // Help and version requests end here too, with status 0.
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                Console.out(message)
                return 0
            }
            Console.err(message)
            return 2
        }
        do {
            var c = command
            try c.run()
            Console.flush()
            return 0
        } catch let status as ExitStatus {
            Console.flush()
            return status.code
        } catch let failure as CommandFailure {
            Console.flush()
            Console.err("error: \(failure.message)")
            return failure.code
        } catch {
            Console.flush()
            // Help requests and argument checks made in run() are ArgumentParser's to word.
            let code = exitCode(for: error)
            if code == .success {
                Console.out(fullMessage(for: error))
                return 0
            }
            if code == .validationFailure {
                Console.err(fullMessage(for: error))
                return 2
            }
            Console.err("error: \(oneLine(error, of: command))")
            return 1
        }
    }

    /// A conversion error names a module, not a file: the command's adapter goes in front unless
    /// the message already starts with a path.
    static func oneLine(_ error: any Error, of command: ParsableCommand) -> String {
        let line = oneLine(error)
        guard error is ConvertError, let source = (command as? ReadsAnAdapter)?.adapterPath else { return line }
        if let first = line.split(separator: ":").first, access(String(first), F_OK) == 0 { return line }
        return "\(source): \(line)"
    }

    /// Errors become exactly one line.
    static func oneLine(_ error: any Error) -> String {
        String(describing: error).split(separator: "\n").joined(separator: "; ")
    }
}
