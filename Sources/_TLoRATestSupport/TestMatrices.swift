import TLoRANumerics

/// Matrices with a prescribed spectrum for numerical tests.
package enum TestMatrices {
    /// A random m×n matrix with orthonormal columns (m ≥ n), from the QR of a Gaussian matrix.
    package static func orthonormal(_ m: Int, _ n: Int, using g: inout SeededGenerator) -> Matrix<Double> {
        householderQR(RandomTensors.gaussianMatrix(rows: m, cols: n, using: &g, as: Double.self)).q
    }

    /// `U · diag(s) · Vᵀ` with random orthonormal U (m×k) and V (n×k), k = s.count.
    package static func withSingularValues(_ s: [Double], rows m: Int, cols n: Int, using g: inout SeededGenerator) -> Matrix<Double> {
        let k = s.count
        var u = orthonormal(m, k, using: &g)
        let v = orthonormal(n, k, using: &g)
        for i in 0..<m { for j in 0..<k { u[i, j] *= s[j] } }
        return matmul(u, v, transposeB: true)
    }

    /// Singular values from 1 down to 1/condition, geometrically spaced.
    package static func geometric(_ k: Int, condition: Double) -> [Double] {
        (0..<k).map { i in k == 1 ? 1 : pow10(-Double(i) / Double(k - 1) * log10(condition)) }
    }

    static func log10(_ x: Double) -> Double { TLoRATestMath.log(x) / TLoRATestMath.log(10) }
    static func pow10(_ x: Double) -> Double { TLoRATestMath.exp(x * TLoRATestMath.log(10)) }

    /// ‖aᵀa − I‖_max for the columns of `a`.
    package static func orthogonalityError(columnsOf a: Matrix<Double>) -> Double {
        let g = matmul(a, a, transposeA: true)
        var worst = 0.0
        for i in 0..<g.rows { for j in 0..<g.cols { worst = max(worst, abs(g[i, j] - (i == j ? 1 : 0))) } }
        return worst
    }

    /// ‖a − b‖_F / ‖b‖_F.
    package static func relativeDifference(_ a: Matrix<Double>, _ b: Matrix<Double>) -> Double {
        Tolerance.relativeError(a.storage, b.storage)
    }
}
