import Testing
import TLoRANumerics
import _TLoRATestSupport

@Suite struct GEMMTests {
    /// Reference product in f64, straightforward loops.
    static func reference(_ a: Matrix<Double>, _ b: Matrix<Double>, ta: Bool, tb: Bool) -> Matrix<Double> {
        let m = ta ? a.cols : a.rows, k = ta ? a.rows : a.cols, n = tb ? b.rows : b.cols
        var c = Matrix<Double>(rows: m, cols: n)
        for i in 0..<m { for j in 0..<n {
            var s = 0.0
            for p in 0..<k { s += (ta ? a[p, i] : a[i, p]) * (tb ? b[j, p] : b[p, j]) }
            c[i, j] = s
        } }
        return c
    }

    @Test(arguments: [(1, 1, 1), (7, 13, 5), (6, 16, 256), (33, 47, 300), (200, 150, 97), (97, 300, 513)],
          [(false, false), (false, true), (true, false), (true, true)])
    func f32WithinTheDotProductBound(shape: (Int, Int, Int), transposes: (Bool, Bool)) {
        let (ta, tb) = transposes
        var g = SeededGenerator(seed: UInt64(shape.0 * 1000 + shape.1 * 10 + shape.2))
        let (m, n, k) = shape
        let a = RandomTensors.gaussianMatrix(rows: ta ? k : m, cols: ta ? m : k, using: &g, as: Float.self)
        let b = RandomTensors.gaussianMatrix(rows: tb ? n : k, cols: tb ? k : n, using: &g, as: Float.self)
        let c = matmul(a, b, transposeA: ta, transposeB: tb)
        let ref = Self.reference(a.converted(), b.converted(), ta: ta, tb: tb)
        // |c_ij − ref_ij| ≤ γ_k Σ|a||b|; for Gaussian data the error is ~√k·u·‖a_i‖‖b_j‖.
        let bound = 4 * Double(k).squareRoot() * Double(Float.ulpOfOne) * Double(k)
        for i in 0..<m { for j in 0..<n {
            #expect(abs(Double(c[i, j]) - ref[i, j]) <= bound, "(\(i),\(j)) of \(shape)")
        } }
    }

    @Test(arguments: [(5, 9, 3), (64, 64, 64), (130, 70, 260)])
    func f64MatchesReference(shape: (Int, Int, Int)) {
        var g = SeededGenerator(seed: 9)
        let a = RandomTensors.gaussianMatrix(rows: shape.0, cols: shape.2, using: &g, as: Double.self)
        let b = RandomTensors.gaussianMatrix(rows: shape.2, cols: shape.1, using: &g, as: Double.self)
        #expect(TestMatrices.relativeDifference(matmul(a, b), Self.reference(a, b, ta: false, tb: false)) < 1e-14)
    }

    @Test func alphaBetaAndLeadingDimensions() {
        var g = SeededGenerator(seed: 4)
        let a = RandomTensors.gaussianMatrix(rows: 20, cols: 30, using: &g, as: Float.self)
        let b = RandomTensors.gaussianMatrix(rows: 12, cols: 40, using: &g, as: Float.self)
        var c = RandomTensors.gaussianMatrix(rows: 20, cols: 50, using: &g, as: Float.self)
        let before = c
        // C[:, 5..<45] = 2 · A[:, 3..<15] · B + 0.5 · C[:, 5..<45], using leading dimensions.
        a.storage.withUnsafeBufferPointer { ap in b.storage.withUnsafeBufferPointer { bp in c.storage.withUnsafeMutableBufferPointer { cp in
            GEMM.multiply(m: 20, n: 40, k: 12, alpha: 2, a: ap.baseAddress! + 3, lda: 30, b: bp.baseAddress!, ldb: 40, beta: 0.5, c: cp.baseAddress! + 5, ldc: 50)
        } } }
        for i in 0..<20 { for j in 0..<50 {
            var expected = Double(before[i, j])
            if j >= 5 && j < 45 {
                var s = 0.0
                for p in 0..<12 { s += Double(a[i, 3 + p]) * Double(b[p, j - 5]) }
                expected = 2 * s + 0.5 * Double(before[i, j])
            }
            #expect(abs(Double(c[i, j]) - expected) < 1e-4)
        } }
    }

    @Test func bigProductUsesThreadsAndStaysCorrect() {
        var g = SeededGenerator(seed: 8)
        let a = RandomTensors.gaussianMatrix(rows: 300, cols: 200, using: &g, as: Double.self)
        let b = RandomTensors.gaussianMatrix(rows: 200, cols: 260, using: &g, as: Double.self)
        #expect(TestMatrices.relativeDifference(matmul(a, b), Self.reference(a, b, ta: false, tb: false)) < 1e-14)
    }
}
