import Testing
import TLoRAInterop
import TLoRANumerics
import _TLoRATestSupport

/// Merging a converted adapter gives the merge of its source up to the conversion's bound, checked
/// end to end through the `tlora` commands: ‖W_converted − W_source‖_F ≤ E‖ΔW‖_F per TT module and
/// per Tucker group (summed over all groups here), plus the f32 rounding of the two merges.
@Suite struct ConvertedMergeTests {
    /// The trained MiniLM adapter on its real base when `make test` provides it; the tiny Llama always.
    static var cases: [(adapter: String, base: String)] {
        var c = [(Fixtures.peft("llama-lora"), Fixtures.model("tiny-llama"))]
        if let minilm = Fixtures.miniLMBase { c.append((Fixtures.peft("minilm-trained"), minilm)) }
        return c
    }

    static func run(_ arguments: [String]) throws {
        let r = try CommandRunner.tlora(arguments)
        #expect(r.status == 0, "tlora \(arguments.joined(separator: " ")): \(r.stderr)")
    }

    /// A tensor's values; integer tensors (e.g. BERT's `position_ids`) as their raw bytes.
    static func values(_ checkpoint: Checkpoint, _ name: String) throws -> [Double] {
        let (shard, entry) = try #require(checkpoint.entry(name), "\(checkpoint.path) lacks \(name)")
        let bytes = shard.bytes(of: entry)
        guard let dtype = entry.dtype.floatType else { return bytes.map(Double.init) }
        return ElementConversion.doubles(from: bytes, dtype: dtype)
    }

    @Test(arguments: [0.05, 0.3])
    func convertedMergesMatchTheSourceMergeWithinTheBound(e: Double) throws {
        for (adapter, base) in Self.cases {
            let dir = TemporaryDirectory()
            try Self.run(["convert", "dense-to-tt", adapter, "-o", dir.file("tt.tlora"), "--max-rel-error", "\(e)"])
            try Self.run(["convert", "dense-to-tucker", adapter, "-o", dir.file("tucker.tlora"), "--group", "depth", "--max-rel-error", "\(e)"])
            for (what, input) in [("source", adapter), ("tt", dir.file("tt.tlora")), ("tucker", dir.file("tucker.tlora"))] {
                try Self.run(["merge", input, "--base", base, "-o", dir.file("merged-" + what)])
            }
            let baseCheckpoint = try Checkpoint(path: base)
            let source = try Checkpoint(path: dir.file("merged-source"))
            let tt = try Checkpoint(path: dir.file("merged-tt")), tucker = try Checkpoint(path: dir.file("merged-tucker"))
            var tuckerDifference = 0.0, deltaTotal = 0.0, roundingTotal = 0.0, updated = 0
            for name in baseCheckpoint.tensorNames {
                let w = try Self.values(baseCheckpoint, name), s = try Self.values(source, name)
                let t = try Self.values(tt, name), k = try Self.values(tucker, name)
                var delta = 0.0, weight = 0.0, ttDifference = 0.0, kDifference = 0.0
                for i in w.indices {
                    delta += (s[i] - w[i]) * (s[i] - w[i])
                    weight += s[i] * s[i]
                    ttDifference += (t[i] - s[i]) * (t[i] - s[i])
                    kDifference += (k[i] - s[i]) * (k[i] - s[i])
                }
                if delta == 0 {
                    #expect(ttDifference == 0 && kDifference == 0, "\(name) is not adapted but changed")
                    continue
                }
                updated += 1
                // Each merge rounds every element once to f32: at most 2⁻²⁴‖W′‖ per merge.
                let rounding = 2 * 0x1p-24 * weight.squareRoot()
                #expect(ttDifference.squareRoot() <= e * delta.squareRoot() + rounding,
                        "\(adapter) TT \(name): ‖ΔW_tt − ΔW‖ = \(ttDifference.squareRoot()) > \(e) · \(delta.squareRoot())")
                tuckerDifference += kDifference
                deltaTotal += delta
                roundingTotal += rounding * rounding
            }
            #expect(updated > 0)
            #expect(tuckerDifference.squareRoot() <= e * deltaTotal.squareRoot() + roundingTotal.squareRoot(), "\(adapter) Tucker")
            // The conversions are not free: a loose bound really changes the merge.
            if e == 0.3 { #expect(tuckerDifference > 0) }
        }
    }
}
