import Foundation
import Testing
import TLoRAConvert
import TLoRAInterop
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// The conversions' guarantees on adapters written by real PEFT, including the one really trained on
/// all-MiniLM-L6-v2: every module (TT) or group (Tucker) meets ‖ΔW − ΔŴ‖_F ≤ E‖ΔW‖_F, and the
/// reported error agrees with an independent dense computation.
@Suite struct RealAdapterConversionTests {
    /// Real adapters and the head count their base uses (for the att constructions).
    static let adapters: [(name: String, heads: Int)] = [("minilm-trained", 12), ("llama-lora", 4), ("gpt2-lora", 4), ("bert-lora", 4)]
    static let bounds = [1e-4, 0.05, 0.3]

    static func load(_ name: String) throws -> Adapter { try PEFTReader.read(directory: Fixtures.peft(name)) }

    /// ‖ΔW_x − ΔW_y‖²_F and ‖ΔW_x‖²_F of one module, densely (independent of the converters' factored measurement).
    static func denseSquares(_ name: String, _ x: Adapter, _ y: Adapter) throws -> (difference: Double, norm: Double) {
        let a = try DenseDelta.of(try #require(x.module(named: name)), in: x).storage
        let b = try DenseDelta.of(try #require(y.module(named: name)), in: y).storage
        var d = 0.0, n = 0.0
        for i in a.indices { d += (a[i] - b[i]) * (a[i] - b[i]); n += a[i] * a[i] }
        return (d, n)
    }

    static func relative(_ s: (difference: Double, norm: Double)) -> Double { s.norm == 0 ? s.difference.squareRoot() : (s.difference / s.norm).squareRoot() }

    @Test(arguments: adapters.map(\.name), bounds)
    func tensorTrainBoundHolds(name: String, e: Double) throws {
        let source = try Self.load(name)
        // The TT-matrix layout has no factored form (dense TT-SVD): run it on the adapters whose
        // modules are small enough to keep the suite fast, and the row/column layout on all.
        let layouts: [DenseToTT.Layout] = name == "minilm-trained" ? [.rowsThenColumns] : DenseToTT.Layout.allCases
        for layout in layouts {
            let (converted, summary) = try DenseToTT.convert(source, options: .init(target: .init(maxRelativeError: e), layout: layout, dtype: .f32))
            try converted.validate()
            #expect(summary.lines.count == source.modules.count)
            for line in summary.lines {
                #expect(line.relativeError <= e, "\(name) \(layout) \(line.name): \(line.relativeError) > \(e)")
                let dense = Self.relative(try Self.denseSquares(line.name, source, converted))
                #expect(abs(dense - line.relativeError) <= 1e-6 * max(e, line.relativeError) + 1e-7,
                        "\(name) \(layout) \(line.name): reported \(line.relativeError), dense \(dense)")
            }
        }
    }

    @Test(arguments: adapters.map(\.name), GroupKind.allCases)
    func tuckerGroupBoundHolds(name: String, kind: GroupKind) throws {
        let source = try Self.load(name)
        let heads = try #require(Self.adapters.first { $0.name == name }).heads
        if name == "gpt2-lora", [.qkv, .att, .attQKV, .attDepth, .qkvDepth, .attQKVDepth].contains(kind) {
            // GPT-2 fuses q, k and v into one `c_attn`: nothing to stack or split into heads, and
            // the command says so.
            #expect(throws: ConvertError.self) { try DenseToTucker.convert(source, options: .init(target: .lossless, group: kind, heads: heads)) }
            return
        }
        for e in Self.bounds {
            let (converted, summary) = try DenseToTucker.convert(source, options: .init(target: .init(maxRelativeError: e), group: kind, heads: heads, dtype: .f32))
            try converted.validate()
            #expect(!summary.lines.isEmpty, "\(name) \(kind): nothing was grouped")
            var covered = Set(summary.unchanged.map(\.name))
            for line in summary.lines {
                #expect(line.relativeError <= e, "\(name) \(kind) \(line.name): \(line.relativeError) > \(e)")
                let members = line.members.isEmpty ? [line.name] : line.members
                var sum = (difference: 0.0, norm: 0.0)
                for m in members {
                    let s = try Self.denseSquares(m, source, converted)
                    sum.difference += s.difference
                    sum.norm += s.norm
                    covered.insert(m)
                }
                let dense = Self.relative(sum)
                // The report is an upper bound: measured exactly but for the f32 rounding of the in
                // and out factors, which is bounded (a few 2⁻²⁴ of the group's norm) and added.
                #expect(dense <= line.relativeError * (1 + 1e-9) + 1e-12 && line.relativeError - dense <= 1e-6 * max(e, line.relativeError) + 4e-7,
                        "\(name) \(kind) \(line.name): reported \(line.relativeError), dense \(dense)")
            }
            #expect(covered == Set(source.modules.map(\.name)), "\(name) \(kind): every module is grouped or reported unchanged")
        }
    }

    @Test(arguments: ["minilm-trained", "llama-lora"])
    func losslessSettingsRebuildToRounding(name: String) throws {
        let source = try Self.load(name)
        let (tt, _) = try DenseToTT.convert(source, options: .init(target: .lossless, dtype: .f64))
        let (tucker, _) = try DenseToTucker.convert(source, options: .init(target: .lossless, group: .depth, dtype: .f64))
        let (lora, _) = try ToLoRA.convert(tt, options: .init(target: .lossless, dtype: .f64))
        for m in source.modules {
            #expect(Self.relative(try Self.denseSquares(m.name, source, tt)) <= 1e-12, "tt \(m.name)")
            #expect(Self.relative(try Self.denseSquares(m.name, source, tucker)) <= 1e-12, "tucker \(m.name)")
            #expect(Self.relative(try Self.denseSquares(m.name, source, lora)) <= 1e-12, "tt → lora \(m.name)")
        }
    }
}
