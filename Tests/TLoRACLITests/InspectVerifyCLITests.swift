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
}
