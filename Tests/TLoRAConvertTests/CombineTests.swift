import Testing
@testable import TLoRAConvert
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// `Combine` against PEFT's `add_weighted_adapter` on the real PEFT fixtures
/// (references/combine, made by Fixtures/extract_combine_fixtures.py).
@Suite struct CombineTests {
    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var adapters: [String]
        var weights: [Double]
        var method: CombineMethod
        var density: Double?
        var majority: TaskArithmetic.MajoritySign
        var rank: Int
        var masks: Bool
        var description: String { name }
    }

    static let cases: [Case] = {
        guard let json = try? JSONParser.parse(readWholeFile(path: Fixtures.reference("combine/cases.json"))),
              let list = json["cases"]?.arrayValue else { return [] }
        return list.compactMap { c in
            guard let name = c["case"]?.stringValue, let method = c["method"]?.stringValue.flatMap(CombineMethod.init(rawValue:)),
                  let adapters = c["adapters"]?.arrayValue?.compactMap(\.stringValue),
                  let weights = c["weights"]?.arrayValue?.compactMap(\.doubleValue), let rank = c["peft_r"]?.intValue else { return nil }
            return Case(name: name, adapters: adapters, weights: weights, method: method, density: c["density"]?.doubleValue,
                        majority: c["majority_sign_method"]?.stringValue.flatMap(TaskArithmetic.MajoritySign.init(rawValue:)) ?? .total,
                        rank: rank, masks: c["masks"]?.boolValue ?? false)
        }
    }()

    /// DARE's masks as PEFT drew them (logged by the fixture generator).
    struct FixtureMask: DropMask {
        let masks: [String: [Bool]]
        func keep(tensor: DropMaskKey, count: Int, density: Double) -> [Bool] {
            masks["\(tensor.module)|\(tensor.adapter)|\(tensor.part)"] ?? []
        }
    }

    @Test func everyCombinationTypeIsCovered() {
        #expect(Set(Self.cases.map(\.method)) == Set(CombineMethod.allCases))
    }

    @Test(arguments: cases)
    func equalsPEFT(_ c: Case) throws {
        let adapters = try c.adapters.map { try PEFTReader.read(directory: Fixtures.peft($0)) }
        var mask: any DropMask = SeededDropMask(seed: 1)
        if c.masks {
            let file = try SafetensorsFile(path: Fixtures.reference("combine/\(c.name).masks.safetensors"))
            var masks: [String: [Bool]] = [:]
            for e in file.entries { masks[e.name] = file.bytes(of: e).map { $0 != 0 } }
            mask = FixtureMask(masks: masks)
        }
        let truncates = c.method == .svd || c.method.rawValue.hasSuffix("_svd")
        let options = CombineOptions(method: c.method, weights: c.weights, density: c.density, majoritySign: c.majority,
                                     target: truncates ? ConversionTarget(maxRank: c.rank) : nil, mask: mask, dtype: .f64)
        let (combined, _) = try Combine.combine(adapters, names: c.adapters, options: options)
        let reference = try SafetensorsFile(path: Fixtures.reference("combine/\(c.name).safetensors"))
        var checked = 0
        for m in combined.modules {
            let a = try reference.tensor(m.name + ".lora_A").matrix(), b = try reference.tensor(m.name + ".lora_B").matrix()
            guard case .lowRank(let ours, let ourB) = m.update else { Issue.record("\(m.name) is not low-rank"); continue }
            #expect(m.scale == 1)
            if c.method.isFactorWise {
                // The factors themselves (PEFT computes in f32).
                #expect(Tolerance.relativeError(ours.doubles(), a.storage) <= 1e-5, "\(c.name) \(m.name) A")
                #expect(Tolerance.relativeError(ourB.doubles(), b.storage) <= 1e-5, "\(c.name) \(m.name) B")
            } else {
                // cat pads missing adapters with zero rows and the SVD's factors are unique only up to
                // signs: compare ΔW.
                #expect(ours.shape[0] <= c.rank, "\(c.name) \(m.name): rank \(ours.shape[0]) > \(c.rank)")
                let delta = LA.mul(ourB.matrix(), ours.matrix()), peft = LA.mul(b, a)
                #expect(Tolerance.relativeError(delta.storage, peft.storage) <= 2e-5, "\(c.name) \(m.name) ΔW")
            }
            checked += 1
        }
        #expect(checked == reference.entries.count / 2, "\(c.name): every module PEFT combined")
    }

    @Test func catIsExactAndSVDMeetsItsBound() throws {
        let names = ["llama-lora", "llama-layers", "llama-rslora-patterns"]
        let adapters = try names.map { try PEFTReader.read(directory: Fixtures.peft($0)) }
        let weights = [0.5, -1.5, 2.0]
        let (cat, _) = try Combine.combine(adapters, names: names, options: CombineOptions(method: .cat, weights: weights, dtype: .f64))
        for e in [0.3, 0.05, 1e-3] {
            let (svd, summary) = try Combine.combine(adapters, names: names, options: CombineOptions(method: .svd, weights: weights,
                                                                                                      target: ConversionTarget(maxRelativeError: e), dtype: .f64))
            for m in svd.modules {
                // Reference: Σ w_i s_i ΔW_i, densely.
                var want = Matrix<Double>(rows: m.outFeatures, cols: m.inFeatures)
                for (a, w) in zip(adapters, weights) {
                    guard let x = a.module(named: m.name) else { continue }
                    let d = try DenseDelta.of(x, in: a)
                    for i in want.storage.indices { want.storage[i] += w * d.storage[i] }
                }
                let got = try DenseDelta.of(m, in: svd)
                let err = Tolerance.relativeError(got.storage, want.storage)
                #expect(err <= e * (1 + 1e-9) + 1e-12, "svd \(e) \(m.name): \(err)")
                let line = try #require(summary.lines.first { $0.name == m.name })
                #expect(abs(line.relativeError - err) <= 1e-9 + 1e-6 * err)
                if e == 1e-3 {
                    let exact = try DenseDelta.of(#require(cat.module(named: m.name)), in: cat)
                    #expect(Tolerance.relativeError(exact.storage, want.storage) <= 1e-12, "cat \(m.name)")
                }
            }
        }
    }

    @Test func seededMasksAreDeterministicAndHaveTheirDensity() {
        let key = DropMaskKey(module: "m", adapter: 1, part: "A")
        let a = SeededDropMask(seed: 7).keep(tensor: key, count: 100_000, density: 0.3)
        #expect(a == SeededDropMask(seed: 7).keep(tensor: key, count: 100_000, density: 0.3))
        #expect(a != SeededDropMask(seed: 8).keep(tensor: key, count: 100_000, density: 0.3))
        #expect(a != SeededDropMask(seed: 7).keep(tensor: DropMaskKey(module: "m", adapter: 0, part: "A"), count: 100_000, density: 0.3))
        let kept = Double(a.filter { $0 }.count) / 100_000
        #expect(abs(kept - 0.3) < 0.01)
    }

    @Test func magnitudePruneKeepsTheLargest() {
        let t: [Double] = [0.1, -3, 2, 0, -0.5, 2, 7, -1]
        #expect(TaskArithmetic.magnitudePrune(t, density: 0.5) == [0, -3, 2, 0, 0, 2, 7, 0])
        #expect(TaskArithmetic.magnitudePrune(t, density: 0.3) == [0, -3, 0, 0, 0, 0, 7, 0])  // ⌊2.4⌋ = 2
        #expect(TaskArithmetic.magnitudePrune(t, density: 1) == t)
        #expect(TaskArithmetic.magnitudePrune(t, density: 0) == [Double](repeating: 0, count: 8))
        var g = SeededGenerator(seed: 3)
        for _ in 0..<20 {
            let n = 1 + Int(g.next() % 500)
            var values = (0..<n).map { _ in Double(Int(g.next() % 41)) - 20 }  // many ties
            let k = 1 + Int(g.next() % UInt64(n))
            let sorted = values.sorted(by: >)
            #expect(Selection.kthLargest(&values, k) == sorted[k - 1])
        }
    }

    @Test func refusesWhatDoesNotCombine() throws {
        let lora = try PEFTReader.read(directory: Fixtures.peft("llama-lora"))
        let layers = try PEFTReader.read(directory: Fixtures.peft("llama-layers"))
        let dora = try PEFTReader.read(directory: Fixtures.peft("llama-dora"))
        let gpt2 = try PEFTReader.read(directory: Fixtures.peft("gpt2-lora"))
        // Factor-wise methods need equal ranks.
        #expect { try Combine.combine([lora, layers], names: ["a", "b"], options: CombineOptions(method: .linear)) } throws: { ($0 as? ConvertError)?.code == .notSupported }
        // DoRA's renormalization is not additive.
        #expect { try Combine.combine([lora, dora], names: ["a", "b"], options: CombineOptions(method: .cat)) } throws: { ($0 as? ConvertError)?.code == .notSupported }
        // Pruning needs a density.
        #expect { try Combine.combine([lora, lora], names: ["a", "b"], options: CombineOptions(method: .ties)) } throws: { ($0 as? ConvertError)?.code == .invalidOptions }
        // Weights must match the adapters.
        #expect { try Combine.combine([lora, lora], names: ["a", "b"], options: CombineOptions(method: .cat, weights: [1])) } throws: { ($0 as? ConvertError)?.code == .invalidOptions }
        // Same module name, other shape: adapters of different models.
        var renamed = gpt2
        renamed.modules = renamed.modules.map { var m = $0; m.name = lora.modules[0].name; return m }.prefix(1).map { $0 }
        #expect { try Combine.combine([lora, renamed], names: ["a", "b"], options: CombineOptions(method: .cat)) } throws: { ($0 as? ConvertError)?.code == .shapeMismatch }
    }
}
