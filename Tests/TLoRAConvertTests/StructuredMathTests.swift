import Testing
import TLoRAConvert
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// The structured forms' ΔW against docs/FORMAT.md's definitions written out element by element,
/// their exact factors against their dense ΔW, and `to-lora` at exact rank.
@Suite struct StructuredMathTests {
    /// `U` from the spec's formulas, one element at a time (no shared code with the library).
    static func reference(_ m: AdapterModule, in adapter: Adapter) -> [Double]? {
        let (out, inn, k) = (m.outFeatures, m.inFeatures, m.kernelSize)
        func mat(_ t: StoredTensor) -> (Int, Int) -> Double {
            let v = t.doubles(), cols = t.shape.dropFirst().reduce(1, *)
            return { v[$0 * cols + $1] }
        }
        /// `M[p, c·K + s] = Σ b[p,i] core[i,j,s] a[j,c]`.
        func tucker(_ f: TuckerFactors, rows: Int, cols: Int) -> (Int, Int) -> Double {
            let core = f.core.doubles(), (r1, r2) = (f.core.shape[0], f.core.shape[1])
            let a = mat(f.a), b = mat(f.b)
            return { p, col in
                let (c, s) = (col / k, col % k)
                var x = 0.0
                for i in 0..<r1 { for j in 0..<r2 { x += b(p, i) * core[(i * r2 + j) * k + s] * a(j, c) } }
                return x
            }
        }
        func factor(_ f: FactorMatrix, rows: Int, cols: Int) -> (Int, Int) -> Double {
            switch f {
            case .full(let w): return mat(w)
            case .lowRank(let a, let b):
                let (am, bm, r) = (mat(a), mat(b), a.shape[0])
                return { p, q in (0..<r).reduce(0) { $0 + bm(p, $1) * am($1, q) } }
            case .tucker(let t): return tucker(t, rows: rows, cols: cols)
            }
        }
        var u = [Double](repeating: 0, count: out * inn)
        switch m.update {
        case .convTucker(let t):
            let f = tucker(t, rows: out, cols: inn)
            for o in 0..<out { for c in 0..<inn { u[o * inn + c] = f(o, c) } }
        case .kronecker(let kr):
            let w1 = kr.w1.tensors.count == 1 ? kr.w1.tensors[0].shape : [kr.w1.tensors.last!.shape[0], kr.w1.tensors.first!.shape[1]]
            let (a, c) = (w1[0], w1[1]), (b, e) = (out / a, inn / c)
            let f1 = factor(kr.w1, rows: a, cols: c), f2 = factor(kr.w2, rows: b, cols: e)
            for i in 0..<a { for p in 0..<b { for j in 0..<c { for q in 0..<e { u[(i * b + p) * inn + j * e + q] = f1(i, j) * f2(p, q) } } } }
        case .hadamard(let h):
            let f1 = factor(h.p1, rows: out, cols: inn), f2 = factor(h.p2, rows: out, cols: inn)
            for o in 0..<out { for i in 0..<inn { u[o * inn + i] = f1(o, i) * f2(o, i) } }
        case .diagonalLowRank(let a, let b, let e):
            let (am, bm, ev) = (mat(a), mat(b), e.doubles())
            for o in 0..<out { for i in 0..<inn { u[o * inn + i] = ev.indices.reduce(0) { $0 + bm(o, $1) * ev[$1] * am($1, i) } } }
        case .vera(let v):
            let pair = adapter.projectionPair(named: v.projections)!
            let (am, bm, lb, ld) = (mat(pair.a), mat(pair.b), v.lambdaB.doubles(), v.lambdaD.doubles())
            for o in 0..<out { for i in 0..<inn { u[o * inn + i] = lb[o] * ld.indices.reduce(0) { $0 + bm(o, $1) * ld[$1] * am($1, i) } } }
        case .dense(let d): u = d.doubles()
        default: return nil
        }
        return u
    }

    @Test(arguments: [DType.f32, .f64])
    func denseDeltaAndFactorsMatchTheSpec(dtype: DType) throws {
        let adapter = SampleAdapters.structured(seed: 5, dtype: dtype)
        var checked = 0
        for m in adapter.modules {
            guard let expected = Self.reference(m, in: adapter) else { continue }
            let dense = try DenseDelta.unscaled(m, in: adapter)
            #expect(Tolerance.relativeError(dense.storage, expected) <= 1e-13 || expected.allSatisfy { $0 == 0 }, "\(m.name)")
            if let f = try LowRankForm.of(m, in: adapter) {
                let fromFactors = f.dense.storage
                let err = expected.allSatisfy { $0 == 0 } ? Tolerance.maxAbsDifference(fromFactors, expected) : Tolerance.relativeError(fromFactors, expected)
                #expect(err <= 1e-13, "\(m.name): factors give \(err)")
            }
            checked += 1
        }
        #expect(checked == 10)
    }

    @Test func exactFactorRanksAreTheProductsOfTheHalves() throws {
        let adapter = SampleAdapters.structured(seed: 5, dtype: .f32)
        func rank(_ name: String) throws -> Int { try LowRankForm.of(adapter.module(named: name)!, in: adapter)!.rank }
        #expect(try rank("layers.0.lokr") == 2 * 2)  // W1 3×2 full (rank min = 2) ⊗ W2 rank 2
        #expect(try rank("conv.lokr") == 1 * 2)  // W1 rank 1 ⊗ W2 Tucker r1 = 2
        #expect(try rank("layers.0.loha") == 3 * 2)
        #expect(try rank("conv.locon") == 2)
    }

    @Test func iA3HasNoDeltaAndSaysWhy() {
        let adapter = SampleAdapters.structured(seed: 5, dtype: .f32)
        #expect(throws: ConvertError.self) { try DenseDelta.unscaled(adapter.module(named: "layers.0.ia3_k")!, in: adapter) }
    }

    @Test func toLoRAAtExactRankReproducesEveryAdditiveForm() throws {
        var adapter = SampleAdapters.structured(seed: 9, dtype: .f32)
        adapter.modules.removeAll { !$0.update.isAdditive }
        let (lora, summary) = try ToLoRA.convert(adapter, options: .init(target: .lossless))
        #expect(summary.worstError <= 1e-6, "\(summary.worstError)")
        for (m, l) in zip(adapter.modules, lora.modules) {
            guard case .lowRank = l.update else { Issue.record("\(l.name) is not low-rank"); continue }
            let x = try DenseDelta.of(m, in: adapter), y = try DenseDelta.of(l, in: lora)
            let err = Tolerance.relativeError(y.storage, x.storage)
            #expect(x.storage.allSatisfy { $0 == 0 } ? y.storage.allSatisfy { abs($0) < 1e-12 } : err <= 1e-6, "\(m.name): \(err)")
            // DoRA, kernels and bias changes are carried over, not dropped.
            #expect(l.doraMagnitude == m.doraMagnitude && l.doraAxis == m.doraAxis && l.kernel == m.kernel && l.biasDelta == m.biasDelta)
        }
        #expect(lora.projections.isEmpty)
    }

    @Test func kroneckerSVDMatchesTheDenseSVD() throws {
        var g = SeededGenerator(seed: 21)
        func t(_ s: [Int]) -> StoredTensor { StoredTensor((0..<s.reduce(1, *)).map { _ in g.gaussian() }, shape: s, dtype: .f64) }
        let m = AdapterModule(name: "k", outFeatures: 6 * 16, inFeatures: 4 * 32, scale: 0.5,
                              update: .kronecker(Kronecker(w1: .full(t([6, 4])), w2: .lowRank(a: t([3, 32]), b: t([16, 3])))))
        let adapter = Adapter(modules: [m])
        let dense = try DenseDelta.unscaled(m, in: adapter)
        let reference = svd(dense).s
        // Truncated to rank 5 from the halves: the error is the tail of the true singular values.
        let (lora, _) = try ToLoRA.convert(adapter, options: .init(target: ConversionTarget(maxRank: 5)))
        let approx = try DenseDelta.unscaled(lora.modules[0], in: lora)
        let tail = reference.dropFirst(5).reduce(0) { $0 + $1 * $1 }.squareRoot()
        let measured = Tolerance.relativeError(approx.storage, dense.storage) * ErrorMeasure.frobenius(dense.storage)
        // f32 storage of the factors adds ~1e-7 relative to the whole.
        #expect(abs(measured - tail) <= 1e-6 * ErrorMeasure.frobenius(dense.storage), "\(measured) vs \(tail)")
        #expect(reference.count >= 12 && reference[12] < 1e-9 * reference[0])  // rank 4 · 3
    }

    /// At exact rank the Kronecker conversion measures its (rounding-only) error from small Grams;
    /// it must equal the error measured densely.
    @Test(arguments: [DType.f32, .bf16])
    func kroneckerRoundingErrorEqualsTheDenseMeasure(dtype: DType) throws {
        var g = SeededGenerator(seed: 33)
        func t(_ s: [Int]) -> StoredTensor { StoredTensor((0..<s.reduce(1, *)).map { _ in g.gaussian() }, shape: s, dtype: .f32) }
        let m = AdapterModule(name: "k", outFeatures: 8 * 24, inFeatures: 4 * 40, scale: 2,
                              update: .kronecker(Kronecker(w1: .full(t([8, 4])), w2: .lowRank(a: t([5, 40]), b: t([24, 5])))))
        let adapter = Adapter(modules: [m])
        let (lora, summary) = try ToLoRA.convert(adapter, options: .init(target: .lossless, dtype: dtype))
        let x = try DenseDelta.unscaled(m, in: adapter), y = try DenseDelta.unscaled(lora.modules[0], in: lora)
        let dense = Tolerance.relativeError(y.storage, x.storage)
        let reported = summary.lines[0].relativeError
        #expect(dense > 0 && abs(reported - dense) <= 1e-3 * dense, "reported \(reported), dense \(dense)")
        #expect(summary.lines[0].ranks == [4 * 5])
    }
}
