import Testing
import TLoRAIO
import _TLoRATestSupport

/// What the CLI says and which exit code it uses when given the wrong thing (issue 18, items 3–8
/// and 13): one line naming the path and what is expected; 1 for a bad input, 2 for a bad option,
/// 3 only for a damaged `.tlora` file or an error above the threshold.
@Suite struct CLIMessagesTests {
    static let llama = Fixtures.peft("llama-lora")
    static let base = Fixtures.model("tiny-llama")

    /// Exit `status` and exactly one stderr line that starts with `error: ` (or ArgumentParser's
    /// `Error: ` for usage errors) and contains every one of `fragments`.
    static func expectOneLine(_ r: CommandRunner.Result, status: Int32, _ fragments: [String], _ context: String) {
        #expect(r.status == status, "\(context): exit \(r.status): \(r.stderr)")
        let lines = r.stderr.split(separator: "\n")
        if status == 2 {
            #expect(lines.first?.hasPrefix("Error: ") == true, "\(context): \(r.stderr)")
        } else {
            #expect(lines.count == 1 && lines[0].hasPrefix("error: "), "\(context): \(r.stderr)")
        }
        for f in fragments { #expect(r.stderr.contains(f), "\(context): no \"\(f)\" in \(r.stderr)") }
    }

    /// A copy of the PEFT fixture with one weight set to NaN.
    static func withNaN(_ dir: TemporaryDirectory) -> String {
        let out = dir.file("nan")
        makeDirectory(out)
        for name in ["adapter_config.json", "adapter_model.safetensors"] {
            TestFiles.write(joinPath(out, name), TestFiles.read(joinPath(llama, name)))
        }
        var bytes = TestFiles.read(joinPath(out, "adapter_model.safetensors"))
        let headerLength = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
        withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { bytes.replaceSubrange((8 + headerLength + 16)..<(8 + headerLength + 20), with: $0) }
        TestFiles.write(joinPath(out, "adapter_model.safetensors"), bytes)
        return out
    }

    // 3b: values from files and options reach --json as valid JSON, or are refused first.
    @Test func verifyJSONStaysValidWithNaNAndRefusesAnInfiniteLimit() throws {
        let dir = TemporaryDirectory()
        let nan = Self.withNaN(dir)
        let r = try CommandRunner.tlora(["verify", nan, "--against", Self.llama, "--json"])
        #expect(r.status == 3, "\(r.stderr)")
        let json = try JSONParser.parse(r.stdout)
        #expect(json["passed"]?.boolValue == false)
        #expect(json["entries"]?.arrayValue?.contains { $0["rel_error"] == .null } == true)
        let plain = try CommandRunner.tlora(["verify", nan, "--against", Self.llama])
        Self.expectOneLine(plain, status: 3, ["no finite error"], "NaN candidate")
        let inf = try CommandRunner.tlora(["verify", nan, "--against", Self.llama, "--max-rel-error", "inf", "--json"])
        Self.expectOneLine(inf, status: 2, ["--max-rel-error must be at least 0 and below 1"], "--max-rel-error inf")
    }

    // 4: exit 3 means a damaged .tlora file or an error above the threshold, nothing else.
    @Test func verifyOfWhatIsNotATLoRAFileIsExitOne() throws {
        let missing = try CommandRunner.tlora(["verify", "/nonexistent/a.tlora"])
        Self.expectOneLine(missing, status: 1, ["/nonexistent/a.tlora: no such file or directory"], "missing")
        let peft = try CommandRunner.tlora(["verify", Self.llama])
        Self.expectOneLine(peft, status: 1, ["\(Self.llama): this is a PEFT adapter directory, not a .tlora file", "--against"], "PEFT dir")
        let gguf = Fixtures.path("gguf/tiny-llama-lora.llamacpp.q8_0.gguf")
        let g = try CommandRunner.tlora(["verify", gguf])
        Self.expectOneLine(g, status: 1, ["\(gguf): this is a GGUF file, not a .tlora file"], "GGUF")
        // A damaged .tlora file (its magic broken) is still exit 3.
        let dir = TemporaryDirectory()
        let path = dir.file("a.tlora")
        #expect(try CommandRunner.tlora(["convert", "import", Self.llama, "-o", path]).status == 0)
        var bytes = TestFiles.read(path)
        bytes[0] ^= 0xFF
        TestFiles.write(path, bytes)
        #expect(try CommandRunner.tlora(["verify", path]).status == 3)
    }

    // 5: what a base must be; what is not an adapter.
    @Test func aBaseThatIsNotACheckpointDirectorySaysWhatABaseIs() throws {
        let dir = TemporaryDirectory()
        let tlora = dir.file("a.tlora")
        #expect(try CommandRunner.tlora(["convert", "import", Self.llama, "-o", tlora]).status == 0)
        for (base, found) in [(tlora, "this is a .tlora adapter"), (joinPath(Self.base, "config.json"), "a JSON file")] {
            let r = try CommandRunner.tlora(["merge", Self.llama, "--base", base, "-o", dir.file("merged")])
            Self.expectOneLine(r, status: 1, ["\(base): a base must be a Hugging Face checkpoint directory", found], "--base \(base)")
        }
        // One weights file is a base too (a single-file checkpoint): the output is one file.
        let single = try CommandRunner.tlora(["merge", Self.llama, "--base", joinPath(Self.base, "model.safetensors"), "-o", dir.file("merged.safetensors")])
        #expect(single.status == 0 && pathKind(dir.file("merged.safetensors")) == .file, "\(single.stderr)")
        let gguf = Fixtures.path("gguf/tiny-llama-lora.llamacpp.f32.gguf")
        let config = try CommandRunner.tlora(["convert", "import", gguf, "--base-config", tlora, "-o", dir.file("g.tlora")])
        Self.expectOneLine(config, status: 1, ["\(tlora): --base-config takes a base checkpoint directory or its config.json"], "--base-config .tlora")
        let readme = dir.file("README.md")
        TestFiles.write(readme, Array("# notes\n".utf8))
        let r = try CommandRunner.tlora(["convert", "import", readme, "-o", dir.file("r.tlora")])
        Self.expectOneLine(r, status: 1, ["\(readme): unrecognized file"], "README.md")
        #expect(!r.stderr.contains("checkpoint"), "\(r.stderr)")
    }

    // 6: the option the message names exists on the command.
    @Test func exportToGGUFWithoutHeadsNamesItsOwnOption() throws {
        let dir = TemporaryDirectory()
        let r = try CommandRunner.tlora(["export", Self.llama, "--format", "gguf", "--architecture", "llama", "-o", dir.file("a.gguf")])
        Self.expectOneLine(r, status: 1, ["--base-config", "--heads"], "export gguf without heads")
        #expect(!r.stderr.contains("--base "), "\(r.stderr)")
    }

    // 8 and 13: contradictory or impossible targets up front; one range of --max-rel-error.
    @Test func contradictoryOrImpossibleTargetsAreRefusedUpFront() throws {
        let dir = TemporaryDirectory()
        let out = dir.file("o.tlora")
        let both = try CommandRunner.tlora(["convert", "dense-to-tt", Self.llama, "-o", out, "--max-rank", "4", "--max-rel-error", "0.1"])
        Self.expectOneLine(both, status: 2, ["--max-rel-error and --max-rank are alternatives"], "both targets")
        let tiny = try CommandRunner.tlora(["convert", "to-lora", Self.llama, "-o", out, "--max-rel-error", "1e-300"])
        Self.expectOneLine(tiny, status: 2, ["below the rounding error of f32 storage", "--dtype f64"], "1e-300")
        let f16 = try CommandRunner.tlora(["convert", "dense-to-tucker", Self.llama, "--group", "module", "-o", out, "--max-rel-error", "1e-5", "--dtype", "f16"])
        Self.expectOneLine(f16, status: 2, ["below the rounding error of f16 storage"], "1e-5 in f16")
        let ranks = try CommandRunner.tlora(["convert", "dense-to-tucker", Self.llama, "--group", "module", "-o", out, "--ranks", "2,2", "--max-rank", "3"])
        Self.expectOneLine(ranks, status: 2, ["--ranks fixes the core size"], "--ranks with --max-rank")
        for command in [["verify", Self.llama, "--against", Self.llama], ["convert", "dense-to-tt", Self.llama, "-o", out]] {
            for e in ["2", "1", "-0.5", "nan"] {
                let r = try CommandRunner.tlora(command + ["--max-rel-error=\(e)"])
                Self.expectOneLine(r, status: 2, ["--max-rel-error must be at least 0 and below 1"], "\(command[0]) --max-rel-error \(e)")
            }
        }
        #expect(pathKind(out) == .missing)
        // A lossless conversion is still allowed at 0.
        #expect(try CommandRunner.tlora(["convert", "to-lora", Self.llama, "-o", out, "--max-rel-error", "0"]).status == 0)
    }

    // 3: the output is checked before the input is even read: a missing input is not reached.
    @Test(arguments: [
        ["convert", "import", "/nonexistent/src"], ["convert", "dense-to-tt", "/nonexistent/src"],
        ["convert", "dense-to-tucker", "/nonexistent/src", "--group", "module"], ["convert", "to-lora", "/nonexistent/src"],
        ["export", "/nonexistent/src", "--format", "peft"], ["export", "/nonexistent/src", "--format", "gguf"],
        ["merge", "/nonexistent/src", "--base", Fixtures.model("tiny-llama")],
    ])
    func anExistingOutputIsRefusedBeforeAnyWork(_ command: [String]) throws {
        let dir = TemporaryDirectory()
        let out = dir.file("existing")
        TestFiles.write(out, Array("mine".utf8))
        let r = try CommandRunner.tlora(command + ["-o", out])
        Self.expectOneLine(r, status: 1, ["\(out): already exists"], command.joined(separator: " "))
        #expect(TestFiles.read(out) == Array("mine".utf8))
    }

    // 9: on a grouped-query model the att groups split k/v by the key/value heads of the base's
    // config, and say which modules are split and how.
    @Test func attGroupsOnAGQAModelUseTheKeyValueHeads() throws {
        let dir = TemporaryDirectory()
        let r = try CommandRunner.tlora(["convert", "dense-to-tucker", Self.llama, "--group", "att", "--base-config", Self.base,
                                         "-o", dir.file("a.tlora"), "--json"])  // tiny-llama: 4 heads, 2 key/value heads of 16
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONParser.parse(r.stdout)
        let entries = json["entries"]?.arrayValue ?? []
        #expect(entries.count == 6, "q, k, v of 2 layers")
        for e in entries {
            let name = e["name"]?.stringValue ?? ""
            let heads = name.contains("q_proj") ? 4 : 2
            #expect(e["ranks"]?.arrayValue?.last?.intValue ?? 0 <= heads, "\(name): \(e["ranks"] ?? .null)")
        }
        let notes = json["notes"]?.arrayValue?.compactMap { $0["reason"]?.stringValue } ?? []
        #expect(notes.filter { $0 == "outputs split into 2 heads of 16 (key/value heads)" }.count == 4, "\(notes)")
        #expect(notes.filter { $0 == "outputs split into 4 heads of 16" }.count == 2, "\(notes)")
        let unchanged = json["unchanged"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(unchanged.count == 8 && unchanged.allSatisfy { $0.contains("mlp") || $0.contains("o_proj") }, "\(unchanged)")
    }
}
