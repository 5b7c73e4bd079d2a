import Foundation
import Testing
@testable import TLoRAConvert
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// The Gram route of `BondTruncation` must keep the SVD's guarantee: orthonormal `u`, the
/// discarded part within the tolerance, and (away from ties) the SVD's rank.
@Suite struct BondTruncationTests {
    /// rows × cols with singular values 1, q, q², … (u, v random orthonormal).
    static func decaying(rows: Int, cols: Int, ratio: Double, seed: UInt64) -> (Matrix<Double>, [Double]) {
        var g = SeededGenerator(seed: seed)
        let k = min(rows, cols)
        let u = LA.qr(RandomTensors.gaussianMatrix(rows: rows, cols: k, using: &g, as: Double.self)).q
        let v = LA.qr(RandomTensors.gaussianMatrix(rows: cols, cols: k, using: &g, as: Double.self)).q
        let s = (0..<k).map { pow(ratio, Double($0)) }
        var us = u
        for i in 0..<rows { for j in 0..<k { us[i, j] *= s[j] } }
        return (LA.mul(us, v, tb: true), s)
    }

    @Test(arguments: [(200, 300), (300, 200), (128, 128)], [1e-3, 0.05, 0.3])
    func gramRouteMeetsTheTolerance(shape: (Int, Int), e: Double) throws {
        let (m, s) = Self.decaying(rows: shape.0, cols: shape.1, ratio: 0.97, seed: UInt64(shape.0 * 7 + shape.1))
        let norm = ErrorMeasure.frobenius(m.storage)
        let tolerance = e * norm
        #expect(BondTruncation.takesGramRoute(n: min(shape.0, shape.1), tolerance: tolerance, norm2: norm * norm))
        let (u, rest, tail) = BondTruncation.truncate(m, tolerance: tolerance, maxRank: .max)
        // Orthonormal columns.
        let gram = LA.mul(u, u, ta: true)
        var off = 0.0
        for i in 0..<gram.rows { for j in 0..<gram.cols { off = max(off, abs(gram[i, j] - (i == j ? 1 : 0))) } }
        #expect(off < 1e-12)
        // The discarded part, measured densely, within the tolerance and equal to the reported tail.
        let approx = LA.mul(u, rest)
        var d2 = 0.0
        for i in m.storage.indices { d2 += (m.storage[i] - approx.storage[i]) * (m.storage[i] - approx.storage[i]) }
        #expect(d2.squareRoot() <= tolerance)
        #expect(abs(d2.squareRoot() - tail) <= 1e-6 * norm)
        // Same rank as the exact singular values give (the budget may cost at most one direction).
        let exact = Truncation.rank(singularValues: s, tolerance: tolerance).rank
        #expect(u.cols >= exact && u.cols <= exact + 1, "kept \(u.cols), SVD keeps \(exact)")
    }

    @Test func tightTolerancesUseTheSVD() throws {
        let (m, s) = Self.decaying(rows: 100, cols: 120, ratio: 0.7, seed: 4)
        let tolerance = 1e-9 * ErrorMeasure.frobenius(m.storage)
        #expect(!BondTruncation.takesGramRoute(n: 100, tolerance: tolerance, norm2: pow(ErrorMeasure.frobenius(m.storage), 2)))
        let (u, _, _) = BondTruncation.truncate(m, tolerance: tolerance, maxRank: .max)
        #expect(u.cols == Truncation.rank(singularValues: s, tolerance: tolerance).rank)
    }

    @Test func maxRankCaps() throws {
        let (m, _) = Self.decaying(rows: 150, cols: 90, ratio: 0.99, seed: 5)
        let (u, rest, _) = BondTruncation.truncate(m, tolerance: 0.3 * ErrorMeasure.frobenius(m.storage), maxRank: 7)
        #expect(u.cols == 7 && rest.rows == 7 && rest.cols == 90)
    }

    /// A whole conversion whose bonds (16·8 = 128) take the Gram route.
    @Test(arguments: [1e-3, 0.05, 0.3])
    func largeBondsMeetTheTrainBound(e: Double) throws {
        let source = DenseToTTTests.adapter(seed: 21, out: 1024, in: 512, rank: 16, modules: 1)
        let (converted, summary) = try DenseToTT.convert(source, options: .init(target: .init(maxRelativeError: e), dtype: .f64))
        let m = converted.modules[0]
        #expect(summary.lines[0].relativeError <= e)
        let independent = try DenseToTTTests.denseError(source.modules[0], in: source, m, in: converted)
        #expect(abs(independent - summary.lines[0].relativeError) <= 1e-9 + 1e-6 * independent)
        guard case .tensorTrain(let tt) = m.update else { Issue.record("not a train"); return }
        #expect(tt.ranks.max()! >= BondTruncation.gramMinimum || e > 0.01, "ranks \(tt.ranks): no bond took the Gram route")
    }
}
