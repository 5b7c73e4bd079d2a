import Testing
import TLoRAIO
import _TLoRATestSupport

/// Every command that writes, with `-o` equal to, inside, and around each of its inputs (adapter,
/// `--base`, `--base-config` as a directory and as a file), with and without `--force`: each run is
/// refused with exit 1 and one `error:` line, and the whole tree of inputs is byte-identical
/// afterwards (no temporaries either). The same commands with a fresh output succeed, so the
/// refusals are the path rules at work, not a broken command.
@Suite struct OutputSafetyTests {
    /// A command line whose inputs are marked: `input(p)` values are the paths tried as outputs.
    struct Case: CustomStringConvertible {
        let name: String
        let arguments: [Argument]
        var description: String { name }

        enum Argument {
            case plain(String)
            case input(String)  // relative to the work folder
            case output
        }

        func line(root: String, output: String) -> [String] {
            arguments.flatMap { a -> [String] in
                switch a {
                case .plain(let s): return [s]
                case .input(let p): return [joinPath(root, p)]
                case .output: return ["-o", output]
                }
            }
        }

        var inputs: [String] { arguments.compactMap { if case .input(let p) = $0 { return p } else { return nil } } }
    }

    static let cases: [Case] = {
        let peft = Case.Argument.input("in/peft"), tlora = Case.Argument.input("in/adapter.tlora"), gguf = Case.Argument.input("in/a.gguf")
        let baseDir = Case.Argument.input("in/base"), baseConfig = Case.Argument.input("in/base/config.json")
        func c(_ name: String, _ a: Case.Argument...) -> Case { Case(name: name, arguments: a) }
        return [
            c("import peft", .plain("convert"), .plain("import"), peft, .output),
            c("import gguf + base-config dir", .plain("convert"), .plain("import"), gguf, .plain("--base-config"), baseDir, .output),
            c("import gguf + config.json", .plain("convert"), .plain("import"), gguf, .plain("--base-config"), baseConfig, .output),
            c("dense-to-tt", .plain("convert"), .plain("dense-to-tt"), tlora, .output),
            c("dense-to-tucker", .plain("convert"), .plain("dense-to-tucker"), peft, .plain("--group"), .plain("module"), .output),
            c("to-lora tlora", .plain("convert"), .plain("to-lora"), tlora, .output),
            c("to-lora peft", .plain("convert"), .plain("to-lora"), peft, .plain("--format"), .plain("peft"), .output),
            c("export peft", .plain("export"), tlora, .plain("--format"), .plain("peft"), .output),
            c("export gguf", .plain("export"), gguf, .plain("--format"), .plain("gguf"), .plain("--base-config"), baseDir, .output),
            c("merge", .plain("merge"), peft, .plain("--base"), baseDir, .output),
        ]
    }()

    /// A work folder holding copies of the fixtures.
    static func workFolder() throws -> TemporaryDirectory {
        let dir = TemporaryDirectory()
        makeDirectory(dir.file("in"))
        try TLoRAIO.copyTree(Fixtures.peft("llama-lora"), to: dir.file("in/peft"))
        try TLoRAIO.copyTree(Fixtures.model("tiny-llama"), to: dir.file("in/base"))
        try TLoRAIO.copyTree(Fixtures.path("gguf/tiny-llama-lora.llamacpp.f32.gguf"), to: dir.file("in/a.gguf"))
        let made = try CommandRunner.tlora(["convert", "import", dir.file("in/peft"), "-o", dir.file("in/adapter.tlora")])
        #expect(made.status == 0, "\(made.stderr)")
        TestFiles.write(dir.file("in/notes.txt"), Array("the user's own file\n".utf8))
        return dir
    }

    @Test(arguments: cases)
    func outputNeverEqualsHoldsOrLiesInAnInput(_ command: Case) throws {
        let dir = try Self.workFolder()
        let root = dir.path
        // The command works with a fresh output.
        makeDirectory(dir.file("out"))
        let fine = try CommandRunner.tlora(command.line(root: root, output: dir.file("out/result")))
        #expect(fine.status == 0, "\(command): \(fine.stderr)")
        removeTree(dir.file("out"))

        let before = treeFingerprint(root)
        for input in command.inputs {
            let full = joinPath(root, input)
            let outputs = [("equal", full), ("inside", full + "/result"), ("in the folder holding", parentDirectory(full)),
                           ("two folders up from", parentDirectory(parentDirectory(full)))]
            for (relation, output) in outputs {
                for force in [false, true] {
                    let r = try CommandRunner.tlora(command.line(root: root, output: output) + (force ? ["--force"] : []))
                    let context = "\(command), -o \(relation) \(input)\(force ? ", --force" : "")"
                    #expect(r.status == 1, "\(context): exit \(r.status), \(r.stderr)")
                    let lines = r.stderr.split(separator: "\n")
                    #expect(lines.count == 1 && lines.first?.hasPrefix("error: ") == true, "\(context): \(r.stderr)")
                    #expect(treeFingerprint(root) == before, "\(context): the work folder changed")
                }
            }
        }
    }
}
