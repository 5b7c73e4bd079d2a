/// The eigendecomposition of a symmetric matrix: `a = vectors · diag(values) · vectorsᵀ`.
public struct SymmetricEigenResult: Sendable {
    /// The n eigenvalues, ascending.
    public var values: [Double]
    /// n × n with orthonormal columns; column i belongs to `values[i]`.
    public var vectors: Matrix<Double>
}

/// Eigenvalues and eigenvectors of a symmetric n×n matrix (e.g. a Gram matrix `aᵀa`).
///
/// Householder tridiagonalization (blocked, LAPACK's dsytrd scheme), divide and conquer on the
/// tridiagonal matrix (Cuppen; Gu–Eisenstat eigenvectors), then the tridiagonal's eigenvectors
/// pushed back through the reflectors in 128-wide compact-WY blocks. The input is symmetrized as
/// (a + aᵀ)/2 first, so a matrix that is symmetric only up to rounding (a computed Gram matrix)
/// is handled consistently.
///
/// Accuracy (normwise backward stable): ‖a − V Λ Vᵀ‖ ≲ c·n·u·‖a‖, ‖VᵀV − I‖ ≲ c·n·u, and each
/// eigenvalue within c·n·u·‖a‖ of the exact one. (Eigenvalues of a Gram matrix `aᵀa` are σ²: small
/// ones are accurate only to u·σ_max², so use `svd(a)` when the small σ matter.)
/// - Complexity: ≈ 4/3·n³ flops to tridiagonalize (half memory-bound), ≈ 4/3·n³ for the divide and
///   conquer, 2n³ to apply the reflectors.
public func symmetricEigen(_ a: Matrix<Double>) -> SymmetricEigenResult {
    precondition(a.rows == a.cols, "symmetricEigen needs a square matrix, got \(a.rows)×\(a.cols)")
    let n = a.rows
    if n == 0 { return SymmetricEigenResult(values: [], vectors: Matrix(rows: 0, cols: 0)) }
    var sym = a
    var big = 0.0
    sym.storage.withUnsafeMutableBufferPointer { s in
        for i in 0..<n {
            for j in 0..<i {
                let v = 0.5 * (s[i * n + j] + s[j * n + i])
                s[i * n + j] = v
                s[j * n + i] = v
            }
        }
        for x in s { big = max(big, abs(x)) }
    }
    if big == 0 { return SymmetricEigenResult(values: [Double](repeating: 0, count: n), vectors: .identity(n)) }
    // Power-of-two scaling keeps the reflectors' squared norms in range.
    var scale = 1.0
    if big > 0x1p300 || big < 0x1p-300 {
        scale = Double(sign: .plus, exponent: big.exponent, significand: 1)
        for i in sym.storage.indices { sym.storage[i] /= scale }
    }
    var timer = PhaseTimer("eig \(n)")
    let tri = Tridiagonalization(sym)
    timer.mark("tridiagonalize")
    let f = TridiagonalEigen.decompose(d: tri.d, e: tri.e)
    timer.mark("tridiagonal d&c")
    var v = f.q
    tri.applyQ(to: &v)
    timer.mark("apply Q")
    return SymmetricEigenResult(values: f.values.map { $0 * scale }, vectors: v)
}
