import Testing
import TLoRAFormat
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Writes the committed fuzz seed corpus (`fuzz/corpus/container`) when `TLORA_WRITE_FUZZ_SEEDS`
/// names that directory; otherwise checks that the committed seeds are valid files.
@Suite struct FuzzSeedTests {
    static let seeds: [(String, Adapter, CodecChoice)] = [
        ("every-kind-f32-auto", SampleAdapters.everyKind(seed: 1, dtype: .f32), .automatic),
        ("every-kind-bf16-raw", SampleAdapters.everyKind(seed: 2, dtype: .bf16), .forced(.raw)),
        ("every-kind-f16-zstd", SampleAdapters.everyKind(seed: 3, dtype: .f16), .forced(.zstd)),
        ("every-kind-f64-bytegroup", SampleAdapters.everyKind(seed: 4, dtype: .f64), .forced(.bytegroupZstd)),
        ("lora-small", SampleAdapters.lora(seed: 5, modules: 2, out: 8, in: 6, rank: 2), .automatic),
        ("empty", Adapter(), .automatic),
    ]

    static let bankSeeds: [(String, AdapterBank, CodecChoice)] = [
        ("bank-f32-auto", SampleAdapters.bank(seed: 8), .automatic),
        ("bank-bf16-raw", SampleAdapters.bank(seed: 9, dtype: .bf16), .forced(.raw)),
    ]

    @Test func bankSeedsAreValid() throws {
        let dir = getenv("TLORA_WRITE_FUZZ_SEEDS").map { String(cString: $0) } ?? "fuzz/corpus/container"
        for (name, bank, codec) in Self.bankSeeds {
            if getenv("TLORA_WRITE_FUZZ_SEEDS") != nil {
                try ContainerWriter.write(bank, to: dir + "/" + name + ".tlora", options: WriteOptions(codec: codec, level: 3, overwrite: true))
            }
            let report = TLoRAFile.verify(path: dir + "/" + name + ".tlora")
            #expect(report.isIntact, "\(name): \(report.problems)")
            #expect(try TLoRAFile(path: dir + "/" + name + ".tlora").loadBank() == bank)
        }
    }

    @Test func seedCorpusIsValid() throws {
        let dir: String
        if let target = getenv("TLORA_WRITE_FUZZ_SEEDS").map({ String(cString: $0) }) {
            dir = target
            for (name, adapter, codec) in Self.seeds {
                try ContainerWriter.write(adapter, to: dir + "/" + name + ".tlora", options: WriteOptions(codec: codec, level: 3, overwrite: true))
            }
        } else {
            dir = "fuzz/corpus/container"
        }
        for (name, _, _) in Self.seeds {
            let report = TLoRAFile.verify(path: dir + "/" + name + ".tlora")
            #expect(report.isIntact, "\(name): \(report.problems)")
        }
    }
}
