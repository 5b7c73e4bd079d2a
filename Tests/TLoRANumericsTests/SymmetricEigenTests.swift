import Testing
import TLoRANumerics
import _TLoRATestSupport

/// `symmetricEigen`: ‖VᵀV − I‖_max ≤ 1e-13, ‖a − V Λ Vᵀ‖_F ≤ 1e-13‖a‖_F, eigenvalues ascending and,
/// where they are prescribed, within 1e-12·max|λ|.
@Suite struct SymmetricEigenTests {
    static func check(_ r: SymmetricEigenResult, _ a: Matrix<Double>) {
        let n = a.rows
        #expect(r.values.count == n && r.vectors.rows == n && r.vectors.cols == n)
        let orth = TestMatrices.orthogonalityError(columnsOf: r.vectors)
        #expect(orth <= 1e-13, "‖VᵀV − I‖ = \(orth)")
        var vl = r.vectors
        for i in 0..<n { for j in 0..<n { vl[i, j] *= r.values[j] } }
        let diff = ErrorNormTest.frobenius(matmul(vl, r.vectors, transposeB: true), minus: a)
        let norm = ErrorNormTest.frobenius(a)
        #expect(diff <= 1e-13 * norm || norm == 0 && diff == 0, "‖A − VΛVᵀ‖/‖A‖ = \(diff / max(norm, 1e-300))")
        #expect(zip(r.values, r.values.dropFirst()).allSatisfy { $0 <= $1 })
    }

    static func symmetric(_ n: Int, seed: UInt64) -> Matrix<Double> {
        var g = SeededGenerator(seed: seed)
        let x = RandomTensors.gaussianMatrix(rows: n, cols: n, using: &g, as: Double.self)
        var a = x
        for i in 0..<n { for j in 0..<n { a[i, j] = x[i, j] + x[j, i] } }
        return a
    }

    @Test(arguments: [1, 2, 3, 7, 25, 26, 51, 100, 130, 257, 400])
    func randomSymmetric(n: Int) {
        let a = Self.symmetric(n, seed: UInt64(n))
        Self.check(symmetricEigen(a), a)
    }

    /// Q diag(λ) Qᵀ with prescribed eigenvalues: widely spread, clustered, repeated, and of both signs.
    @Test(arguments: [0, 1, 2, 3])
    func prescribedEigenvalues(kind: Int) {
        var g = SeededGenerator(seed: 11 + UInt64(kind))
        let n = 150
        let lambda: [Double]
        switch kind {
        case 0: lambda = TestMatrices.geometric(n, condition: 1e12)
        case 1: lambda = (0..<n).map { $0 < 50 ? 1.0 : ($0 < 100 ? -2.0 : 1e-8 * Double($0)) }
        case 2: lambda = (0..<n).map { Double($0 % 7) - 3 }
        default: lambda = (0..<n).map { i in (i % 2 == 0 ? 1.0 : -1.0) * TestMatrices.geometric(n, condition: 1e8)[i] }
        }
        let q = TestMatrices.orthonormal(n, n, using: &g)
        var ql = q
        for i in 0..<n { for j in 0..<n { ql[i, j] *= lambda[j] } }
        let a = matmul(ql, q, transposeB: true)
        let r = symmetricEigen(a)
        Self.check(r, a)
        let expected = lambda.sorted()
        let scale = lambda.map(abs).max() ?? 1
        for i in 0..<n { #expect(abs(r.values[i] - expected[i]) <= 1e-12 * scale, "λ\(i): \(r.values[i]) vs \(expected[i])") }
    }

    /// A Gram matrix of a rank-deficient factor, the identity, the zero matrix, a diagonal one.
    @Test func specialMatrices() {
        var g = SeededGenerator(seed: 3)
        let f = RandomTensors.gaussianMatrix(rows: 80, cols: 30, using: &g, as: Double.self)
        let gram = matmul(f, f, transposeB: true)  // 80×80, rank 30
        let r = symmetricEigen(gram)
        Self.check(r, gram)
        for i in 0..<50 { #expect(abs(r.values[i]) <= 1e-12 * r.values[79]) }
        Self.check(symmetricEigen(.identity(60)), .identity(60))
        let zero = Matrix<Double>(rows: 40, cols: 40)
        let rz = symmetricEigen(zero)
        Self.check(rz, zero)
        #expect(rz.values.allSatisfy { $0 == 0 })
        var diag = Matrix<Double>(rows: 70, cols: 70)
        for i in 0..<70 { diag[i, i] = Double((i * 37) % 70) - 20 }
        let rd = symmetricEigen(diag)
        Self.check(rd, diag)
        #expect(rd.values == (0..<70).map { Double($0) - 20 })
    }
}
