import Testing
import TLoRANumerics
import _TLoRATestSupport

@Suite struct DecompositionTests {
    static let shapes = [(40, 40), (100, 30), (30, 100), (257, 64), (64, 7), (1, 5), (5, 1)]

    @Test(arguments: shapes)
    func qrIsOrthogonalTriangularAndExact(shape: (Int, Int)) {
        var g = SeededGenerator(seed: UInt64(shape.0 * 31 + shape.1))
        let a = RandomTensors.gaussianMatrix(rows: shape.0, cols: shape.1, using: &g, as: Double.self)
        let (q, r) = householderQR(a)
        let k = min(shape.0, shape.1)
        #expect(q.rows == shape.0 && q.cols == k && r.rows == k && r.cols == shape.1)
        #expect(TestMatrices.orthogonalityError(columnsOf: q) < 1e-13)
        #expect(TestMatrices.relativeDifference(matmul(q, r), a) < 1e-13)
        for i in 0..<k { for j in 0..<min(i, shape.1) { #expect(r[i, j] == 0) } }
    }

    @Test(arguments: shapes)
    func svdOfRandomMatrices(shape: (Int, Int)) {
        var g = SeededGenerator(seed: UInt64(shape.0 * 17 + shape.1))
        let a = RandomTensors.gaussianMatrix(rows: shape.0, cols: shape.1, using: &g, as: Double.self)
        Self.check(svd(a), a)
    }

    /// κ = 1e8 and rank-deficient inputs: orthogonality and reconstruction to 1e-13, singular values
    /// to 1e-12 relative to the largest.
    @Test(arguments: [(120, 40, 1e8), (60, 60, 1e8), (40, 120, 1e8), (300, 64, 1e12)])
    func svdOfIllConditionedMatrices(case c: (Int, Int, Double)) {
        var g = SeededGenerator(seed: 77)
        let k = min(c.0, c.1)
        let s = TestMatrices.geometric(k, condition: c.2)
        let a = TestMatrices.withSingularValues(s, rows: c.0, cols: c.1, using: &g)
        let result = svd(a)
        Self.check(result, a)
        for i in 0..<k { #expect(abs(result.s[i] - s[i]) <= 1e-12 * s[0], "σ\(i): \(result.s[i]) vs \(s[i])") }
    }

    @Test(arguments: [(50, 30, 10), (30, 50, 1), (40, 40, 0)])
    func svdOfRankDeficientMatrices(case c: (Int, Int, Int)) {
        var g = SeededGenerator(seed: 5)
        let a: Matrix<Double>
        if c.2 == 0 {
            a = Matrix(rows: c.0, cols: c.1)
        } else {
            a = matmul(RandomTensors.gaussianMatrix(rows: c.0, cols: c.2, using: &g, as: Double.self),
                       RandomTensors.gaussianMatrix(rows: c.2, cols: c.1, using: &g, as: Double.self))
        }
        let result = svd(a)
        Self.check(result, a)
        let k = min(c.0, c.1)
        for i in c.2..<k { #expect(result.s[i] <= 1e-12 * max(result.s.first ?? 0, 1)) }
    }

    static func check(_ r: SVDResult, _ a: Matrix<Double>) {
        #expect(TestMatrices.orthogonalityError(columnsOf: r.u) < 1e-13)
        #expect(TestMatrices.orthogonalityError(columnsOf: r.vt.transposed()) < 1e-13)
        var us = r.u
        for i in 0..<us.rows { for j in 0..<us.cols { us[i, j] *= r.s[j] } }
        let rebuilt = matmul(us, r.vt)
        let norm = ErrorNormTest.frobenius(a)
        #expect(ErrorNormTest.frobenius(rebuilt, minus: a) <= 1e-13 * max(norm, 1e-300) || norm == 0 && ErrorNormTest.frobenius(rebuilt) == 0)
        #expect(zip(r.s, r.s.dropFirst()).allSatisfy { $0 >= $1 })
        #expect(r.s.allSatisfy { $0 >= 0 })
    }

    @Test func truncationKeepsTheSmallestRankWithinTolerance() {
        let s = [4.0, 3, 2, 1, 0.5]
        #expect(truncationRank(singularValues: s, tolerance: 0).rank == 5)
        #expect(truncationRank(singularValues: s, tolerance: 0.5).rank == 4)
        let t = truncationRank(singularValues: s, tolerance: (1.0 + 0.25).squareRoot())
        #expect(t.rank == 3)
        #expect(abs(t.tail - (1.25).squareRoot()) < 1e-15)
        #expect(truncationRank(singularValues: s, tolerance: 0, maxRank: 2).rank == 2)
    }
}

enum ErrorNormTest {
    static func frobenius(_ a: Matrix<Double>, minus b: Matrix<Double>? = nil) -> Double {
        var s = 0.0
        for i in a.storage.indices { let d = a.storage[i] - (b?.storage[i] ?? 0); s += d * d }
        return s.squareRoot()
    }
}

@Suite struct LeftSVDTests {
    @Test(arguments: [(120, 40, 1e8), (40, 120, 1e8), (64, 64, 1e3), (256, 256, 10.0)])
    func leftFactorsAreOrthonormalAndExact(case c: (Int, Int, Double)) {
        var g = SeededGenerator(seed: 31)
        let k = min(c.0, c.1)
        let s = TestMatrices.geometric(k, condition: c.2)
        let a = TestMatrices.withSingularValues(s, rows: c.0, cols: c.1, using: &g)
        let (u, sigma, svt) = leftSVD(a)
        #expect(TestMatrices.orthogonalityError(columnsOf: u) < 1e-13)
        #expect(TestMatrices.relativeDifference(matmul(u, svt), a) < 1e-13)
        for i in 0..<k { #expect(abs(sigma[i] - s[i]) <= 1e-12 * s[0]) }
        // Row i of svt has norm σ_i (it is σ_i v_iᵀ).
        for i in 0..<k {
            var n2 = 0.0
            for j in 0..<svt.cols { n2 += svt[i, j] * svt[i, j] }
            #expect(abs(n2.squareRoot() - sigma[i]) <= 1e-12 * s[0])
        }
    }
}
