import Testing
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

@Suite struct GGUFTests {
    static let heads = GGUFAdapter.Heads(attention: 4, keyValue: 2)  // tiny-llama's config

    /// llama.cpp's own converter wrote this file from `peft/llama-lora`: reading it back (undoing the
    /// q/k row permutation) gives exactly the PEFT adapter's ΔW for every module.
    @Test func llamaCppConverterOutputMatchesThePEFTAdapter() throws {
        let gguf = try GGUFAdapter.read(path: Fixtures.path("gguf/tiny-llama-lora.llamacpp.f32.gguf"), heads: Self.heads)
        let peft = try PEFTReader.read(directory: Fixtures.peft("llama-lora"))
        #expect(gguf.modules.count == peft.modules.count)
        for m in peft.modules {
            let g = try #require(gguf.module(named: m.name), "GGUF lacks \(m.name)")
            #expect(g.scale == m.scale)
            guard case .lowRank(let a1, let b1) = m.update, case .lowRank(let a2, let b2) = g.update else { Issue.record("not low rank"); continue }
            #expect(a1.floats() == a2.floats(), "\(m.name) A")
            #expect(b1.floats() == b2.floats(), "\(m.name) B")
        }
    }

    @Test func withoutHeadCountsThePermutationIsNotGuessed() {
        #expect { try GGUFAdapter.read(path: Fixtures.path("gguf/tiny-llama-lora.llamacpp.f32.gguf"), heads: nil) } throws: { e in
            (e as? InteropError)?.code == .needsOption && "\(e)".contains("--heads")
        }
    }

    @Test func permutationRoundTrips() throws {
        var g = SeededGenerator(seed: 2)
        let t = StoredTensor((0..<(24 * 5)).map { _ in Float(g.gaussian()) }, shape: [24, 5])
        let forward = try GGUFAdapter.permuteRotaryRows(t, heads: 3, inverse: false, name: "t", path: "p")
        #expect(forward != t)
        #expect(try GGUFAdapter.permuteRotaryRows(forward, heads: 3, inverse: true, name: "t", path: "p") == t)
        #expect(throws: InteropError.self) { try GGUFAdapter.permuteRotaryRows(t, heads: 5, inverse: false, name: "t", path: "p") }
    }

    @Test(arguments: ["f16", "q8_0"])
    func quantizedVariantsStayClose(type: String) throws {
        let gguf = try GGUFAdapter.read(path: Fixtures.path("gguf/tiny-llama-lora.llamacpp.\(type).gguf"), heads: Self.heads)
        let peft = try PEFTReader.read(directory: Fixtures.peft("llama-lora"))
        for m in peft.modules {
            guard case .lowRank(let a1, _) = m.update, case .lowRank(let a2, _) = gguf.module(named: m.name)!.update else { continue }
            #expect(Tolerance.relativeError(a2.floats(), a1.floats()) < (type == "f16" ? 1e-3 : 1e-2))
        }
    }

    @Test(arguments: ["tiny-llama-lora.llamacpp.f32.gguf", "tiny-llama-lora.llamacpp.f16.gguf", "tiny-llama-lora.llamacpp.q8_0.gguf", "tiny-llama-lora.ggufpy.f16.gguf"])
    func roundTripReproducesEveryTensor(name: String) throws {
        let dir = TemporaryDirectory()
        let adapter = try GGUFAdapter.read(path: Fixtures.path("gguf/" + name), heads: Self.heads)
        let report = try GGUFWriter.write(adapter, architecture: "llama", heads: Self.heads, to: dir.file("out.gguf"), overwrite: false)
        #expect(report.bakedModules.isEmpty)
        let original = try GGUFFile(path: Fixtures.path("gguf/" + name))
        let written = try GGUFFile(path: dir.file("out.gguf"))
        #expect(Set(original.tensors.map(\.name)) == Set(written.tensors.map(\.name)))
        for t in original.tensors {
            let w = try #require(written.tensor(t.name))
            #expect(w.ne == t.ne && w.type == t.type, "\(t.name)")
            #expect(original.bytes(of: t).elementsEqual(written.bytes(of: w)), "\(t.name) differs")
        }
        #expect(written.value("adapter.lora.alpha") == original.value("adapter.lora.alpha"))
        #expect(written.value("general.type")?.stringValue == "adapter")
    }

    @Test func scalesGGUFCannotSayAreBakedIntoB() throws {
        let dir = TemporaryDirectory()
        let adapter = try PEFTReader.read(directory: Fixtures.peft("llama-rslora-patterns"))
        let report = try GGUFWriter.write(adapter, architecture: "llama", heads: Self.heads, to: dir.file("r.gguf"), overwrite: false)
        #expect(!report.bakedModules.isEmpty)
        let back = try GGUFAdapter.read(path: dir.file("r.gguf"), heads: Self.heads)
        for m in adapter.modules {
            let b = try #require(back.module(named: m.name))
            guard case .lowRank(let a1, let b1) = m.update, case .lowRank(let a2, let b2) = b.update else { continue }
            // Same ΔW = s·B·A up to one rounding of B.
            let x = zip(b1.doubles(), b2.doubles()).map { $0 * m.scale - $1 * b.scale }
            #expect(a1 == a2)
            #expect(x.map(abs).max()! <= 1e-6 * b1.doubles().map(abs).max()! * m.scale)
        }
    }

    @Test func doraAndReplacedTensorsAreRefusedWithReasons() throws {
        let dir = TemporaryDirectory()
        let dora = try PEFTReader.read(directory: Fixtures.peft("llama-dora"))
        #expect { try GGUFWriter.write(dora, architecture: "llama", heads: Self.heads, to: dir.file("d.gguf"), overwrite: false) } throws: { ($0 as? InteropError)?.code == .unsupported && "\($0)".contains("DoRA") }
        let saved = try PEFTReader.read(directory: Fixtures.peft("llama-embed-save"))
        #expect { try GGUFWriter.write(saved, architecture: "llama", heads: Self.heads, to: dir.file("s.gguf"), overwrite: false) } throws: { ($0 as? InteropError)?.code == .unsupported }
        #expect(pathKind(dir.file("d.gguf")) == .missing && pathKind(dir.file("s.gguf")) == .missing)
    }
}
