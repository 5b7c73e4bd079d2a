import Testing
@testable import TLoRANumerics
import _TLoRATestSupport

/// The thin SVD against the stated bounds on both of its routes (QR + Jacobi for ≤ 32 columns,
/// bidiagonalization + divide and conquer above): ‖uᵀu − I‖_max, ‖vᵀv − I‖_max ≤ 1e-13,
/// ‖a − u s vᵀ‖_F ≤ 1e-13‖a‖_F, and prescribed singular values to 1e-12·σ_max.
@Suite struct SVDAccuracyTests {
    static func check(_ r: SVDResult, _ a: Matrix<Double>, file: String = #fileID, line: Int = #line) -> (orth: Double, rec: Double) {
        let k = min(a.rows, a.cols)
        #expect(r.u.rows == a.rows && r.u.cols == k && r.vt.rows == k && r.vt.cols == a.cols && r.s.count == k)
        let ou = TestMatrices.orthogonalityError(columnsOf: r.u)
        let ov = TestMatrices.orthogonalityError(columnsOf: r.vt.transposed())
        var us = r.u
        for i in 0..<us.rows { for j in 0..<us.cols { us[i, j] *= r.s[j] } }
        let diff = ErrorNormTest.frobenius(matmul(us, r.vt), minus: a)
        let norm = ErrorNormTest.frobenius(a)
        let rec = norm > 0 ? diff / norm : diff
        #expect(ou <= 1e-13, "‖UᵀU − I‖ = \(ou)")
        #expect(ov <= 1e-13, "‖VᵀV − I‖ = \(ov)")
        #expect(rec <= 1e-13, "reconstruction \(rec)")
        #expect(zip(r.s, r.s.dropFirst()).allSatisfy { $0 >= $1 })
        #expect(r.s.allSatisfy { $0 >= 0 })
        return (max(ou, ov), rec)
    }

    @Test(arguments: [(65, 65), (100, 80), (80, 100), (200, 130), (130, 300), (257, 256), (400, 400), (1000, 70)])
    func gaussian(shape: (Int, Int)) {
        var g = SeededGenerator(seed: UInt64(shape.0 * 7919 + shape.1))
        let a = RandomTensors.gaussianMatrix(rows: shape.0, cols: shape.1, using: &g, as: Double.self)
        _ = Self.check(svd(a), a)
    }

    @Test(arguments: [(300, 200, 1e8), (150, 150, 1e8), (90, 240, 1e12), (500, 120, 1e12), (333, 333, 1e16),
                      (300, 30, 1e12), (30, 200, 1e8), (32, 32, 1e8), (1000, 20, 1e12)])
    func prescribedSpectrum(c: (Int, Int, Double)) {
        var g = SeededGenerator(seed: 2024)
        let k = min(c.0, c.1)
        let s = TestMatrices.geometric(k, condition: c.2)
        let a = TestMatrices.withSingularValues(s, rows: c.0, cols: c.1, using: &g)
        let r = svd(a)
        _ = Self.check(r, a)
        var worst = 0.0
        for i in 0..<k { worst = max(worst, abs(r.s[i] - s[i]) / s[0]) }
        #expect(worst <= 1e-12, "σ error \(worst)·σ_max")
    }

    @Test(arguments: [(200, 150, 40), (150, 200, 1), (128, 128, 100), (300, 100, 99), (100, 100, 0)])
    func rankDeficient(c: (Int, Int, Int)) {
        var g = SeededGenerator(seed: 99)
        let a = c.2 == 0 ? Matrix<Double>(rows: c.0, cols: c.1)
            : matmul(RandomTensors.gaussianMatrix(rows: c.0, cols: c.2, using: &g, as: Double.self),
                     RandomTensors.gaussianMatrix(rows: c.2, cols: c.1, using: &g, as: Double.self))
        let r = svd(a)
        _ = Self.check(r, a)
        let k = min(c.0, c.1)
        for i in c.2..<k { #expect(r.s[i] <= 1e-13 * max(r.s.first ?? 0, 1)) }
    }

    /// Repeated singular values (clusters deflate in the merges) and graded matrices.
    @Test func clusteredAndRepeated() {
        var g = SeededGenerator(seed: 4)
        let k = 180
        var s = [Double](repeating: 1, count: 60) + [Double](repeating: 0.5, count: 60)
        s += (0..<60).map { 1e-3 * (1 + Double($0) * 1e-14) }
        let a = TestMatrices.withSingularValues(s.sorted(by: >), rows: 220, cols: k, using: &g)
        let r = svd(a)
        _ = Self.check(r, a)
        for (x, y) in zip(r.s, s.sorted(by: >)) { #expect(abs(x - y) <= 1e-13) }
        // Identity and a diagonal with huge and tiny entries.
        _ = Self.check(svd(Matrix<Double>.identity(100)), .identity(100))
        var diag = Matrix<Double>(rows: 90, cols: 90)
        for i in 0..<90 { diag[i, i] = i % 3 == 0 ? 1e150 : (i % 3 == 1 ? 1e-150 : 0) }
        _ = Self.check(svd(diag), diag)
    }
}
