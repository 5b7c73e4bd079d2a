import Testing
import TLoRAIO
import _TLoRATestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Issue 18, item 12: tables that fit 80 and 120 columns, progress on a terminal only, `--threads`
/// and checked `TLORA_*` variables, `--json` summaries for convert, export and merge, `merge --dry-run`.
@Suite struct CLIUsabilityTests {
    static let minilm = Fixtures.peft("minilm-trained")
    static let llama = Fixtures.peft("llama-lora")
    static let base = Fixtures.model("tiny-llama")

    @Test(arguments: [80, 120])
    func tablesFitTheTerminalWidth(columns: Int) throws {
        let dir = TemporaryDirectory()
        let env = ["COLUMNS": String(columns)]
        let tucker = dir.file("t.tlora")
        var runs: [(String, CommandRunner.Result)] = []
        runs.append(("dense-to-tucker", try CommandRunner.tlora(["convert", "dense-to-tucker", Self.minilm, "--group", "att-qkv", "--heads", "12", "-o", tucker],
                                                                 environment: env)))
        runs.append(("inspect", try CommandRunner.tlora(["inspect", tucker], environment: env)))
        runs.append(("inspect peft", try CommandRunner.tlora(["inspect", Self.minilm], environment: env)))
        runs.append(("verify", try CommandRunner.tlora(["verify", tucker, "--against", Self.minilm], environment: env)))
        runs.append(("to-lora", try CommandRunner.tlora(["convert", "to-lora", tucker, "-o", dir.file("l.tlora")], environment: env)))
        for (name, r) in runs {
            #expect(r.status == 0, "\(name): \(r.stderr)")
            let wide: [String] = r.stdout.split(separator: "\n").map(String.init).filter { $0.count > columns }
            let example = wide.first ?? ""
            #expect(wide.isEmpty, "\(name) at \(columns) columns: \(wide.count) lines too wide, e.g. \(example)")
            // Names are never cut.
            #expect(r.stdout.contains("encoder.layer.5.attention.self."), "\(name)")
        }
        // Unlimited without a terminal or COLUMNS: one line per row.
        let plain = try CommandRunner.tlora(["inspect", tucker])
        #expect(plain.stdout.split(separator: "\n").contains { $0.count > 120 })
    }

    @Test func progressIsDrawnOnATerminalOnly() throws {
        let dir = TemporaryDirectory()
        guard let tty = PseudoTerminal() else { Issue.record("no pseudo-terminal"); return }
        let child = try ChildProcess(CommandRunner.executable, ["convert", "dense-to-tt", Self.minilm, "-o", dir.file("a.tlora"), "--max-rel-error", "0.1"],
                                     stderr: tty.slavePath)
        var drawn = ""
        while !child.hasEnded { drawn += tty.drain() }
        drawn += tty.drain()
        #expect(child.wait() == .exited(0))
        #expect(drawn.contains("converting ["), "\(drawn)")
        #expect(drawn.contains("writing ["), "\(drawn)")
        #expect(drawn.contains("\u{1B}[K"), "the line is cleared at the end")
        let piped = try CommandRunner.tlora(["convert", "dense-to-tt", Self.minilm, "-o", dir.file("b.tlora"), "--max-rel-error", "0.1"])
        #expect(piped.status == 0)
        #expect(piped.stderr.isEmpty, "\(piped.stderr)")
    }

    @Test func threadsOptionAndEnvironmentAreChecked() throws {
        let dir = TemporaryDirectory()
        let zero = try CommandRunner.tlora(["convert", "dense-to-tt", Self.llama, "-o", dir.file("a.tlora"), "--threads", "0"])
        #expect(zero.status == 2 && zero.stderr.contains("--threads must be at least 1"), "\(zero.stderr)")
        let one = try CommandRunner.tlora(["convert", "dense-to-tt", Self.llama, "-o", dir.file("a.tlora"), "--threads", "1"])
        #expect(one.status == 0, "\(one.stderr)")
        for (name, value, message) in [("TLORA_THREADS", "abc", "TLORA_THREADS=abc"), ("TLORA_THREADS", "0", "TLORA_THREADS=0"),
                                       ("TLORA_SIMD", "bogus", "TLORA_SIMD=bogus: must be portable, avx2 or avx512"),
                                       ("TLORA_DISABLE_SIMD", "maybe", "TLORA_DISABLE_SIMD=maybe")] {
            let r = try CommandRunner.tlora(["inspect", Self.llama], environment: [name: value])
            #expect(r.status == 2, "\(name)=\(value): \(r.status)")
            #expect(r.stderr.hasPrefix("Error: \(message)"), "\(r.stderr)")
        }
        #expect(try CommandRunner.tlora(["inspect", Self.llama], environment: ["TLORA_SIMD": "avx2", "TLORA_THREADS": "1"]).status == 0)
    }

    @Test(arguments: [
        ["convert", "import", llama], ["convert", "dense-to-tt", llama], ["convert", "dense-to-tucker", llama, "--group", "qkv"],
        ["convert", "to-lora", llama, "--max-rank", "2"], ["convert", "to-lora", llama, "--format", "peft"],
        ["export", llama, "--format", "gguf", "--architecture", "llama", "--base-config", base], ["merge", llama, "--base", base],
    ])
    func jsonSummariesAreOneDocument(_ command: [String]) throws {
        let dir = TemporaryDirectory()
        let out = dir.file("out")
        let r = try CommandRunner.tlora(command + ["-o", out, "--json"])
        #expect(r.status == 0, "\(command): \(r.stderr)")
        let json = try JSONParser.parse(r.stdout)
        #expect(json["output"]?.stringValue == out, "\(r.stdout)")
        if command[0] == "convert" && command[1] != "import" {
            #expect((json["entries"]?.arrayValue?.count ?? 0) > 0)
            #expect(json["worst_rel_error"]?.doubleValue != nil)
        }
        if command[0] == "merge" { #expect(json["updated_tensors"]?.intValue == 14) }
        #expect(pathKind(out) != .missing)
    }

    @Test func mergeDryRunChecksEverythingAndWritesNothing() throws {
        let dir = TemporaryDirectory()
        let out = dir.file("merged")
        // A stale temporary of a dead run: a dry run must not even clean it up.
        let child = try ChildProcess("/bin/true", [])
        _ = child.wait()
        let stale = dir.file(".x.tlora-tmp-\(child.pid)-1")
        TestFiles.write(stale, [1])
        let before = try directoryEntries(dir.path)
        let dry = try CommandRunner.tlora(["merge", Self.llama, "--base", Self.base, "-o", out, "--dry-run", "--json"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(try directoryEntries(dir.path) == before, "a dry run wrote or removed something")
        let plan = try JSONParser.parse(dry.stdout)
        #expect(plan["dry_run"]?.boolValue == true)
        let real = try CommandRunner.tlora(["merge", Self.llama, "--base", Self.base, "-o", out, "--json"])
        let done = try JSONParser.parse(real.stdout)
        for key in ["updated_tensors", "replaced_tensors", "copied_tensors", "shards", "copied_files", "changes"] {
            #expect(plan[key] == done[key], "\(key): dry run \(plan[key] ?? .null), merge \(done[key] ?? .null)")
        }
        #expect(plan["bytes_to_write"]?.intValue == done["bytes_written"]?.intValue)
        // The same checks as a merge: an existing output without --force is refused.
        let again = try CommandRunner.tlora(["merge", Self.llama, "--base", Self.base, "-o", out, "--dry-run"])
        #expect(again.status == 1 && again.stderr.contains("already exists"), "\(again.stderr)")
        let text = try CommandRunner.tlora(["merge", Self.llama, "--base", Self.base, "-o", dir.file("other"), "--dry-run"])
        #expect(text.stdout.contains("dry run, nothing written: would update 14 tensors"), "\(text.stdout)")
        #expect(text.stdout.contains("model.layers.0.self_attn.q_proj.weight"))
        #expect(pathKind(dir.file("other")) == .missing)
    }
}
