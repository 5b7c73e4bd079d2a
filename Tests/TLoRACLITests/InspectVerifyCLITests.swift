import Testing
import TLoRAFormat
import TLoRAIO
import TLoRAModel
import _TLoRATestSupport

@Suite struct InspectVerifyCLITests {
    static func sample(_ dir: TemporaryDirectory) throws -> String {
        let path = dir.file("s.tlora")
        try ContainerWriter.write(SampleAdapters.everyKind(seed: 5, dtype: .f32), to: path)
        return path
    }

    @Test func inspectPrintsEveryModuleAndGroup() throws {
        let dir = TemporaryDirectory()
        let path = try Self.sample(dir)
        let r = try CommandRunner.tlora(["inspect", path])
        #expect(r.status == 0, "\(r.stderr)")
        for name in ["layers.0.q_proj", "layers.0.k_proj", "layers.1.q_proj", "layers.1.o_proj", "embed_tokens", "qkv.layers.1", "lm_head.weight"] {
            #expect(r.stdout.contains(name), "missing \(name) in\n\(r.stdout)")
        }
        #expect(r.stdout.contains("tensor_train"))
        #expect(r.stdout.contains("low_rank+dora"))
        #expect(r.stdout.contains("4.20e-03"), "recorded TT conversion error")
    }

    @Test func inspectJSONIsOneParseableDocument() throws {
        let dir = TemporaryDirectory()
        let path = try Self.sample(dir)
        let r = try CommandRunner.tlora(["inspect", path, "--json"])
        #expect(r.status == 0)
        let json = try JSONParser.parse(r.stdout)
        #expect(json["format"]?.stringValue == "tlora")
        #expect(json["modules"]?.arrayValue?.count == 6)
        #expect(json["tucker_groups"]?.arrayValue?.first?["ranks"] == JSONValue([3, 2, 2]))
        let lowRank = json["modules"]?.arrayValue?.first { $0["name"]?.stringValue == "layers.0.q_proj" }
        #expect(lowRank?["ranks"] == JSONValue([4]))
        #expect(lowRank?["parameters"]?.intValue == 4 * 8 + 12 * 4 + 12)
        #expect(json["totals"]?["stored_bytes"]?.intValue ?? 0 > 0)
    }

    @Test func verifyReportsOKAndCorruption() throws {
        let dir = TemporaryDirectory()
        let path = try Self.sample(dir)
        let ok = try CommandRunner.tlora(["verify", path])
        #expect(ok.status == 0)
        #expect(ok.stdout.contains("OK"))
        var bytes = TestFiles.read(path)
        bytes[bytes.count - 3] ^= 0x10
        TestFiles.write(path, bytes)
        let bad = try CommandRunner.tlora(["verify", path])
        #expect(bad.status == 3)
        #expect(bad.stderr.contains("checksum mismatch"))
        #expect(bad.stderr.hasPrefix("error: \(path)"))
    }

    @Test func errorsAreOneLineWithExitCodes() throws {
        let missing = try CommandRunner.tlora(["inspect", "/nonexistent/x.tlora"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "error: /nonexistent/x.tlora: no such file or directory\n")
        let usage = try CommandRunner.tlora(["inspect"])
        #expect(usage.status == 2)
        let unknown = try CommandRunner.tlora(["frobnicate"])
        #expect(unknown.status == 2)
        let help = try CommandRunner.tlora(["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("inspect"))
    }

    @Test func inspectReadsOnlyHeadersQuickly() throws {
        let dir = TemporaryDirectory()
        // 64 modules of 1024×1024 rank 16: a 8 MiB file.
        let path = dir.file("big.tlora")
        try ContainerWriter.write(SampleAdapters.lora(seed: 9, modules: 64, out: 1024, in: 1024, rank: 16), to: path,
                                  options: WriteOptions(codec: .forced(.raw)))
        let header = try TLoRAFile(path: path).header
        #expect(header.tensors.count == 128)
        let r = try CommandRunner.tlora(["inspect", path, "--json"])
        #expect(r.status == 0)
    }

    /// A q8_0 GGUF shows its real storage (as gguf-dump does), not the f32 tlora dequantizes to.
    @Test func inspectShowsAGGUFsQuantizationAndBytes() throws {
        let path = Fixtures.path("gguf/tiny-llama-lora.llamacpp.q8_0.gguf")
        let r = try CommandRunner.tlora(["inspect", path, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONParser.parse(r.stdout)
        let modules = json["modules"]?.arrayValue ?? []
        #expect(modules.count == 14)
        #expect(modules.allSatisfy { $0["dtype"]?.stringValue?.hasPrefix("q8_0") == true }, "\(modules.map { $0["dtype"] ?? .null })")
        // Every factor's bytes as stored: the file minus its header and padding.
        let file = try fileSize(path: path)
        let stored = json["totals"]?["stored_bytes"]?.intValue ?? 0
        #expect(stored < file && stored > file * 8 / 10, "\(stored) of \(file)")
        let text = try CommandRunner.tlora(["inspect", path])
        #expect(text.stdout.contains("q8_0"), "\(text.stdout)")
    }

    /// import and inspect state one size ratio, the same way (issue 18, item 11).
    @Test func importAndInspectReportTheSameRatio() throws {
        let dir = TemporaryDirectory()
        let out = dir.file("a.tlora")
        let imported = try CommandRunner.tlora(["convert", "import", Fixtures.peft("llama-lora"), "-o", out])
        #expect(imported.status == 0, "\(imported.stderr)")
        let inspected = try CommandRunner.tlora(["inspect", out])
        func storage(_ text: String) -> String? {
            text.split(separator: "\n").lazy.compactMap { line in line.firstRange(of: "tensors stored in").map { String(line[$0.lowerBound...]) } }.first
                .map { $0.split(separator: ";").first.map(String.init) ?? $0 }
        }
        let a = storage(imported.stdout), b = storage(inspected.stdout)
        #expect(a != nil && a == b, "import: \(imported.stdout)\ninspect: \(inspected.stdout)")
        #expect(a?.contains("× raw f32") == true)
    }
}
