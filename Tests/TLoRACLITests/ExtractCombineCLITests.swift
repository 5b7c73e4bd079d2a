import Testing
import TLoRAFormat
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import _TLoRATestSupport

/// `tlora extract`, `tlora combine` and `tlora merge A B …` as a user runs them.
@Suite struct ExtractCombineCLITests {
    static let base = Fixtures.path("extract/minilm-layer0/base")
    static let finetuned = Fixtures.path("extract/minilm-layer0/finetuned")

    static func oneErrorLine(_ r: CommandRunner.Result, containing piece: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 1, "status \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("error: ") && r.stderr.contains(piece), "\(r.stderr)", sourceLocation: sourceLocation)
    }

    @Test func extractWritesTloraAndPEFT() throws {
        let dir = TemporaryDirectory()
        let r = try CommandRunner.tlora(["extract", "--base", Self.base, "--finetuned", Self.finetuned, "--max-rank", "16", "-o", dir.file("x.tlora")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("encoder.layer.0.attention.self.query") && r.stdout.contains("kept whole: encoder.layer.0.attention.output.LayerNorm.weight"))
        #expect(TLoRAFile.verify(path: dir.file("x.tlora")).isIntact)
        let p = try CommandRunner.tlora(["extract", "--base", Self.base, "--finetuned", Self.finetuned, "--max-rel-error", "0.2", "--format", "peft", "-o", dir.file("peft")])
        #expect(p.status == 0, "\(p.stderr)")
        let adapter = try PEFTReader.read(directory: dir.file("peft"))
        #expect(adapter.modules.count == 2 && adapter.modules.allSatisfy { $0.biasDelta != nil })
        // tt and tucker forms.
        for form in [["--form", "tt"], ["--form", "tucker", "--group", "module"]] {
            let t = try CommandRunner.tlora(["extract", "--base", Self.base, "--finetuned", Self.finetuned, "--max-rel-error", "0.3", "-o", dir.file("f.tlora"), "--force"] + form)
            #expect(t.status == 0, "\(form): \(t.stderr)")
        }
    }

    @Test func extractRefusesWhatItShould() throws {
        let dir = TemporaryDirectory()
        // The output is an input.
        Self.oneErrorLine(try CommandRunner.tlora(["extract", "--base", Self.base, "--finetuned", Self.finetuned, "-o", Self.finetuned, "--format", "peft"]), containing: Self.finetuned)
        // Different architectures.
        Self.oneErrorLine(try CommandRunner.tlora(["extract", "--base", Fixtures.model("tiny-llama"), "--finetuned", Fixtures.model("tiny-gpt2"), "-o", dir.file("a.tlora")]),
                          containing: "not the same architecture")
        // Nothing changed.
        Self.oneErrorLine(try CommandRunner.tlora(["extract", "--base", Self.base, "--finetuned", Self.base, "-o", dir.file("b.tlora")]), containing: "nothing to extract")
        #expect(pathKind(dir.file("b.tlora")) == .missing)
        // A pattern that is not a regular expression.
        Self.oneErrorLine(try CommandRunner.tlora(["extract", "--base", Self.base, "--finetuned", Self.finetuned, "--modules", "(", "-o", dir.file("c.tlora")]),
                          containing: "regular expression")
        // Usage errors.
        #expect(try CommandRunner.tlora(["extract", "--base", Self.base, "--finetuned", Self.finetuned, "--form", "tucker", "-o", dir.file("d.tlora")]).status == 2)
        #expect(try CommandRunner.tlora(["extract", "--base", Self.base, "--finetuned", Self.finetuned, "--form", "tt", "--format", "peft", "-o", dir.file("e")]).status == 2)
    }

    @Test func combineWritesEveryMethod() throws {
        let dir = TemporaryDirectory()
        let a = Fixtures.peft("llama-lora"), b = Fixtures.peft("llama-bin")
        for method in [["cat"], ["svd", "--max-rank", "4"], ["linear"], ["ties", "--density", "0.5"], ["dare_ties", "--density", "0.7", "--seed", "3"],
                       ["magnitude_prune_svd", "--density", "0.5"]] {
            let r = try CommandRunner.tlora(["combine", a, b, "--weights", "0.5,0.5", "--method"] + method + ["-o", dir.file("c.tlora"), "--force"])
            #expect(r.status == 0, "\(method): \(r.stderr)")
        }
        let peft = try CommandRunner.tlora(["combine", a, b, "--method", "cat", "--format", "peft", "-o", dir.file("cat-peft")])
        #expect(peft.status == 0, "\(peft.stderr)")
        // Usage errors: one adapter, density missing, weights count.
        #expect(try CommandRunner.tlora(["combine", a, "--method", "cat", "-o", dir.file("x.tlora")]).status == 2)
        #expect(try CommandRunner.tlora(["combine", a, b, "--method", "ties", "-o", dir.file("x.tlora")]).status == 2)
        #expect(try CommandRunner.tlora(["combine", a, b, "--method", "cat", "--weights", "1", "-o", dir.file("x.tlora")]).status == 2)
        // Different ranks for a factor-wise method.
        Self.oneErrorLine(try CommandRunner.tlora(["combine", a, Fixtures.peft("llama-layers"), "--method", "linear", "-o", dir.file("y.tlora")]), containing: "equal ranks")
    }

    @Test func mergeSeveralAdapters() throws {
        let dir = TemporaryDirectory()
        let a = Fixtures.peft("llama-lora"), b = Fixtures.peft("llama-dora"), base = Fixtures.model("tiny-llama")
        let r = try CommandRunner.tlora(["merge", a, b, "--weights", "0.5,-1", "--base", base, "-o", dir.file("m"), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try JSONParser.parse(Array(r.stdout.utf8))
        #expect(doc["adapters"]?.arrayValue?.count == 2 && doc["weights"]?.arrayValue?.compactMap(\.doubleValue) == [0.5, -1])
        #expect((doc["changes"]?.arrayValue ?? []).contains { $0["module"]?.stringValue?.hasPrefix("1,2:model.layers.0.") == true })
        // Usage errors: weights count, --member with several adapters.
        #expect(try CommandRunner.tlora(["merge", a, b, "--weights", "1", "--base", base, "-o", dir.file("x")]).status == 2)
        #expect(try CommandRunner.tlora(["merge", a, b, "--member", "x", "--base", base, "-o", dir.file("x")]).status == 2)
        // The second adapter is for another model: one line naming it, nothing written.
        Self.oneErrorLine(try CommandRunner.tlora(["merge", a, Fixtures.peft("gpt2-lora"), "--base", base, "-o", dir.file("y")]), containing: "c_attn")
        #expect(pathKind(dir.file("y")) == .missing)
        // The output is one of the adapters.
        Self.oneErrorLine(try CommandRunner.tlora(["merge", a, b, "--base", base, "-o", b, "--force"]), containing: b)
    }
}
