import Testing
import TLoRANumerics
import _TLoRATestSupport

/// Randomized SVD on matrices with known spectra.
@Suite struct RandomizedSVDTests {
    /// Spectrum σ_i = 0.7^i: the rank-k error must be close to the optimum √(Σ_{i>k} σ_i²) (Eckart–
    /// Young), and the computed values close to the true ones.
    @Test(arguments: [(300, 200, 20), (200, 400, 30), (500, 120, 10)])
    func decayingSpectrumIsNearOptimal(c: (Int, Int, Int)) {
        var g = SeededGenerator(seed: 42)
        let (m, n, k) = c
        let s = (0..<min(m, n)).map { TLoRATestMath.exp(Double($0) * TLoRATestMath.log(0.7)) }
        let a = TestMatrices.withSingularValues(s, rows: m, cols: n, using: &g)
        let r = randomizedSVD(a, RandomizedSVDOptions(rank: k, oversampling: 10, powerIterations: 2, seed: 1))
        #expect(r.svd.s.count == k && r.svd.u.cols == k && r.svd.vt.rows == k)
        #expect(TestMatrices.orthogonalityError(columnsOf: r.svd.u) <= 1e-13)
        #expect(TestMatrices.orthogonalityError(columnsOf: r.svd.vt.transposed()) <= 1e-13)
        let optimal = s[k...].reduce(0) { $0 + $1 * $1 }.squareRoot()
        let error = Self.error(r.svd, a)
        #expect(error <= 1.05 * optimal, "error \(error) vs optimal \(optimal)")
        #expect(abs(r.estimatedError - error) <= 1e-6 * s[0] + 0.01 * error)
        // Spectral norm error is close to σ_{k+1}: the leading values themselves are accurate.
        for i in 0..<k { #expect(abs(r.svd.s[i] - s[i]) <= 1e-3 * s[k]) }
    }

    /// Exactly rank-r input with rank target ≥ r: exact to rounding, in both modes.
    @Test func exactlyLowRankIsExact() {
        var g = SeededGenerator(seed: 7)
        let a = matmul(RandomTensors.gaussianMatrix(rows: 400, cols: 12, using: &g, as: Double.self),
                       RandomTensors.gaussianMatrix(rows: 12, cols: 300, using: &g, as: Double.self))
        let norm = a.frobeniusNorm
        let fixed = randomizedSVD(a, RandomizedSVDOptions(rank: 12, oversampling: 5, powerIterations: 0))
        #expect(Self.error(fixed.svd, a) <= 1e-13 * norm)
        let adaptive = randomizedSVD(a, RandomizedSVDOptions(tolerance: 1e-10 * norm, powerIterations: 1, blockSize: 8))
        #expect(adaptive.svd.s.count == 12, "rank \(adaptive.svd.s.count)")
        #expect(Self.error(adaptive.svd, a) <= 1e-13 * norm)
    }

    /// Tolerance mode: the achieved error is within the tolerance and the rank is not wasteful.
    @Test(arguments: [1e-2, 1e-4])
    func toleranceIsMetWithNearMinimalRank(relative: Double) {
        var g = SeededGenerator(seed: 9)
        let s = (0..<150).map { TLoRATestMath.exp(-Double($0) / 8) }
        let a = TestMatrices.withSingularValues(s, rows: 350, cols: 150, using: &g)
        let norm = a.frobeniusNorm
        let r = randomizedSVD(a, RandomizedSVDOptions(tolerance: relative * norm, powerIterations: 1))
        let error = Self.error(r.svd, a)
        #expect(error <= relative * norm * 1.0001, "error \(error / norm) for tolerance \(relative)")
        let minimal = truncationRank(singularValues: s, tolerance: relative * norm).rank
        #expect(r.svd.s.count <= minimal + 2, "rank \(r.svd.s.count), minimal \(minimal)")
    }

    /// Same seed, same result; a different seed still gives a valid factorization.
    @Test func deterministicForASeed() {
        var g = SeededGenerator(seed: 5)
        let a = RandomTensors.gaussianMatrix(rows: 120, cols: 90, using: &g, as: Double.self)
        let x = randomizedSVD(a, RandomizedSVDOptions(rank: 8, seed: 3))
        let y = randomizedSVD(a, RandomizedSVDOptions(rank: 8, seed: 3))
        #expect(x.svd.u == y.svd.u && x.svd.s == y.svd.s && x.svd.vt == y.svd.vt)
        let z = randomizedSVD(a, RandomizedSVDOptions(rank: 8, seed: 4))
        #expect(z.svd.s != x.svd.s)
        let zero = randomizedSVD(Matrix(rows: 30, cols: 20), RandomizedSVDOptions(rank: 3))
        #expect(zero.svd.s == [0, 0, 0] && zero.estimatedError == 0)
    }

    static func error(_ r: SVDResult, _ a: Matrix<Double>) -> Double {
        var us = r.u
        for i in 0..<us.rows { for j in 0..<us.cols { us[i, j] *= r.s[j] } }
        return ErrorNormTest.frobenius(matmul(us, r.vt), minus: a)
    }
}
