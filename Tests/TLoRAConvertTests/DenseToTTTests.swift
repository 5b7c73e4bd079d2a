import Testing
@testable import TLoRAConvert
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

@Suite struct DenseToTTTests {
    /// An adapter whose ΔW has decaying singular values (so truncation actually trades error for size).
    static func adapter(seed: UInt64, out: Int, in inn: Int, rank: Int, modules: Int = 2) -> Adapter {
        var g = SeededGenerator(seed: seed)
        let ms = (0..<modules).map { i -> AdapterModule in
            var a = RandomTensors.gaussianMatrix(rows: rank, cols: inn, using: &g, as: Float.self)
            for r in 0..<rank { for j in 0..<inn { a[r, j] /= Float(r * r + 1) } }  // decaying spectrum
            let b = RandomTensors.gaussianMatrix(rows: out, cols: rank, scale: 0.1, using: &g, as: Float.self)
            return AdapterModule(name: "layers.\(i).proj", outFeatures: out, inFeatures: inn, scale: 1.5,
                                 update: .lowRank(a: StoredTensor(a, dtype: .f32), b: StoredTensor(b, dtype: .f32)))
        }
        return Adapter(modules: ms)
    }

    /// The dense relative error between two modules' ΔW (independent of the factored measurement).
    static func denseError(_ a: AdapterModule, in x: Adapter, _ b: AdapterModule, in y: Adapter) throws -> Double {
        let da = try DenseDelta.of(a, in: x), db = try DenseDelta.of(b, in: y)
        return Tolerance.relativeError(db.storage, da.storage)
    }

    @Test(arguments: [1e-4, 0.05, 0.3], [DenseToTT.Layout.rowsThenColumns, .interleaved])
    func boundHoldsOnRandomAdapters(e: Double, layout: DenseToTT.Layout) throws {
        let source = Self.adapter(seed: 17, out: 24, in: 36, rank: 6)
        let (converted, summary) = try DenseToTT.convert(source, options: .init(target: .init(maxRelativeError: e), layout: layout, dtype: .f64))
        try converted.validate()
        for (m, line) in zip(converted.modules, summary.lines) {
            #expect(line.relativeError <= e * (1 + 1e-9), "\(m.name): \(line.relativeError) > \(e)")
            let independent = try Self.denseError(source.module(named: m.name)!, in: source, m, in: converted)
            #expect(abs(independent - line.relativeError) <= 1e-9 + 1e-6 * line.relativeError, "measured \(line.relativeError) vs dense \(independent)")
            guard case .tensorTrain(let tt) = m.update else { Issue.record("not a train"); continue }
            if layout == .rowsThenColumns {
                #expect(tt.rowModes.prefix(while: { $0 > 1 }).reduce(1, *) == 24)
            }
        }
        if e == 0.3 { #expect(summary.parameters < summary.sourceParameters * 4) }
    }

    @Test(arguments: [DenseToTT.Layout.rowsThenColumns, .interleaved])
    func losslessRebuildsToRounding(layout: DenseToTT.Layout) throws {
        let source = Self.adapter(seed: 3, out: 16, in: 12, rank: 3)
        let (f64, _) = try DenseToTT.convert(source, options: .init(target: .lossless, layout: layout, dtype: .f64))
        let (f32, _) = try DenseToTT.convert(source, options: .init(target: .lossless, layout: layout, dtype: .f32))
        for m in source.modules {
            #expect(try Self.denseError(m, in: source, f64.module(named: m.name)!, in: f64) < 1e-13)
            #expect(try Self.denseError(m, in: source, f32.module(named: m.name)!, in: f32) < 1e-6)
        }
    }

    @Test func middleBondIsAtMostTheLoRARank() throws {
        let source = Self.adapter(seed: 5, out: 32, in: 32, rank: 4, modules: 1)
        let (converted, _) = try DenseToTT.convert(source, options: .init(target: .lossless, modes: TTModes(rows: [4, 8], columns: [8, 4]), dtype: .f64))
        guard case .tensorTrain(let tt) = converted.modules[0].update else { Issue.record("not a train"); return }
        #expect(tt.ranks[2] <= 4)
        #expect(tt.ranks.first == 1 && tt.ranks.last == 1)
    }

    @Test func maxRankCapsEveryBond() throws {
        let source = Self.adapter(seed: 6, out: 32, in: 32, rank: 8, modules: 1)
        let (converted, summary) = try DenseToTT.convert(source, options: .init(target: .init(maxRank: 3), dtype: .f64))
        guard case .tensorTrain(let tt) = converted.modules[0].update else { Issue.record("not a train"); return }
        #expect(tt.ranks.allSatisfy { $0 <= 3 })
        #expect(summary.lines[0].relativeError > 0)
    }

    @Test func modesParseAndFactorize() {
        #expect(TTModes.parse("16,16,16x4,4") == TTModes(rows: [16, 16, 16], columns: [4, 4]))
        #expect(TTModes.parse("16,16") == nil)
        #expect(TTModes.parse("0x4") == nil)
        #expect(TTModes.automatic(out: 4096, in: 384).rows == [16, 16, 16])
        #expect(TTModes.automatic(out: 4096, in: 384).columns.reduce(1, *) == 384)
        #expect(TTModes.automatic(out: 5632, in: 1).rows.reduce(1, *) == 5632)
        #expect(TTModes.automatic(out: 97, in: 2).rows == [97])
    }
}
