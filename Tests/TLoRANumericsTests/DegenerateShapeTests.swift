import Testing
@testable import TLoRANumerics
import _TLoRATestSupport

/// Tiny, wide, tall and all-zero inputs on every decomposition (both SVD routes are forced where
/// the size alone would pick one).
@Suite struct DegenerateShapeTests {
    static let shapes = [(1, 1), (2, 1), (1, 2), (1, 7), (7, 1), (2, 2), (3, 2), (2, 3), (3, 40), (40, 3), (26, 26), (27, 80)]

    static func checkSVD(_ r: SVDResult, _ a: Matrix<Double>) {
        let k = min(a.rows, a.cols)
        #expect(r.u.rows == a.rows && r.u.cols == k && r.s.count == k && r.vt.rows == k && r.vt.cols == a.cols)
        #expect(TestMatrices.orthogonalityError(columnsOf: r.u) <= 1e-13)
        #expect(TestMatrices.orthogonalityError(columnsOf: r.vt.transposed()) <= 1e-13)
        var us = r.u
        for i in 0..<us.rows { for j in 0..<k { us[i, j] *= r.s[j] } }
        let norm = a.frobeniusNorm
        #expect(frobeniusDistance(Tensor(matmul(us, r.vt)), Tensor(a)) <= 1e-13 * norm)
        #expect(zip(r.s, r.s.dropFirst()).allSatisfy { $0 >= $1 } && r.s.allSatisfy { $0 >= 0 })
    }

    /// The Golub–Kahan route on a tall or square input (wide ones through the transpose).
    static func bidiagonalRoute(_ a: Matrix<Double>) -> SVDResult {
        if a.rows >= a.cols { return GolubKahanSVD.decompose(a) }
        let t = GolubKahanSVD.decompose(a.transposed())
        return SVDResult(u: t.vt.transposed(), s: t.s, vt: t.u.transposed())
    }

    @Test(arguments: shapes)
    func svdOnBothRoutes(shape: (Int, Int)) {
        var g = SeededGenerator(seed: UInt64(shape.0 * 100 + shape.1))
        let a = RandomTensors.gaussianMatrix(rows: shape.0, cols: shape.1, using: &g, as: Double.self)
        Self.checkSVD(svd(a), a)
        Self.checkSVD(Self.bidiagonalRoute(a), a)
        let zero = Matrix<Double>(rows: shape.0, cols: shape.1)
        let z1 = svd(zero), z2 = Self.bidiagonalRoute(zero)
        Self.checkSVD(z1, zero)
        Self.checkSVD(z2, zero)
        #expect(z1.s.allSatisfy { $0 == 0 } && z2.s.allSatisfy { $0 == 0 })
        // 1×1 and vectors: σ is the absolute value / the norm.
        if min(shape.0, shape.1) == 1 {
            let norm = a.frobeniusNorm
            #expect(abs(svd(a).s[0] - norm) <= 1e-15 * norm && abs(Self.bidiagonalRoute(a).s[0] - norm) <= 1e-15 * norm)
        }
    }

    @Test(arguments: shapes)
    func qrAndLeftSVD(shape: (Int, Int)) {
        var g = SeededGenerator(seed: UInt64(shape.0 * 31 + shape.1))
        for a in [RandomTensors.gaussianMatrix(rows: shape.0, cols: shape.1, using: &g, as: Double.self), Matrix(rows: shape.0, cols: shape.1)] {
            let (q, r) = householderQR(a)
            #expect(TestMatrices.orthogonalityError(columnsOf: q) <= 1e-13)
            #expect(ErrorNormTest.frobenius(matmul(q, r), minus: a) <= 1e-13 * max(a.frobeniusNorm, 1e-300))
            let (u, s, svt) = leftSVD(a)
            #expect(TestMatrices.orthogonalityError(columnsOf: u) <= 1e-13)
            #expect(ErrorNormTest.frobenius(matmul(u, svt), minus: a) <= 1e-13 * max(a.frobeniusNorm, 1e-300))
            #expect(s.count == min(shape.0, shape.1))
        }
    }

    @Test func eigenOfTinyMatrices() {
        let one = symmetricEigen(Matrix(rows: 1, cols: 1, storage: [-3]))
        #expect(one.values == [-3] && abs(one.vectors[0, 0]) == 1)
        let two = symmetricEigen(Matrix(rows: 2, cols: 2, storage: [2, 1, 1, 2]))
        #expect(abs(two.values[0] - 1) <= 1e-15 && abs(two.values[1] - 3) <= 1e-15)
        #expect(TestMatrices.orthogonalityError(columnsOf: two.vectors) <= 1e-15)
        #expect(symmetricEigen(Matrix(rows: 0, cols: 0)).values.isEmpty)
        // Nearly symmetric input is symmetrized, not misread.
        var a = Matrix<Double>(rows: 3, cols: 3, storage: [1, 2, 3, 2, 4, 5, 3, 5, 6])
        a[0, 1] += 1e-14
        let r = symmetricEigen(a)
        #expect(TestMatrices.orthogonalityError(columnsOf: r.vectors) <= 1e-14)
    }

    /// Huge and tiny scales: the results scale with the input, without overflow or underflow.
    @Test(arguments: [1e-300, 1e-150, 1e150, 1e300])
    func extremeScales(scale: Double) {
        var g = SeededGenerator(seed: 21)
        var a = RandomTensors.gaussianMatrix(rows: 90, cols: 70, using: &g, as: Double.self)
        let base = svd(a).s
        for i in a.storage.indices { a.storage[i] *= scale }
        let r = svd(a)
        Self.checkSVD(r, a)
        for (x, y) in zip(r.s, base) { #expect(abs(x / scale - y) <= 1e-13 * base[0]) }
        var sym = matmul(a, a, transposeB: true)
        if sym.storage.allSatisfy({ $0.isFinite && $0 != 0 }) {
            let e = symmetricEigen(sym)
            #expect(TestMatrices.orthogonalityError(columnsOf: e.vectors) <= 1e-13)
        }
        sym = Matrix(rows: 3, cols: 3, storage: [2 * scale, scale, 0, scale, 2 * scale, scale, 0, scale, 2 * scale])
        let e = symmetricEigen(sym)
        let expected = [2 - 2.0.squareRoot(), 2, 2 + 2.0.squareRoot()]
        for (x, y) in zip(e.values, expected) { #expect(abs(x / scale - y) <= 1e-14 * 4) }
    }
}
