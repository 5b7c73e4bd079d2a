import TLoRANumerics

/// The dense linear algebra the converters use, in f64, on TLoRANumerics' kernels. A facade so the
/// algorithms read the same whichever kernels sit underneath.
enum LA {
    /// `op(a) · op(b)`.
    static func mul(_ a: Matrix<Double>, _ b: Matrix<Double>, ta: Bool = false, tb: Bool = false) -> Matrix<Double> {
        matmul(a, b, transposeA: ta, transposeB: tb)
    }

    /// Thin QR.
    static func qr(_ a: Matrix<Double>) -> (q: Matrix<Double>, r: Matrix<Double>) { householderQR(a) }

    /// Thin SVD `a = u · diag(s) · vt`, s descending.
    static func svd(_ a: Matrix<Double>) -> (u: Matrix<Double>, s: [Double], vt: Matrix<Double>) {
        let r = TLoRANumerics.svd(a)
        return (r.u, r.s, r.vt)
    }

    /// Left singular vectors, values, and `s·vᵀ = uᵀ a` (no right rotations accumulated).
    static func leftSVD(_ a: Matrix<Double>) -> (u: Matrix<Double>, s: [Double], svt: Matrix<Double>) {
        TLoRANumerics.leftSVD(a)
    }
}
