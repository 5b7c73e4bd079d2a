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
