import TLoRAModel
import TLoRANumerics

/// One member's update of one module, `X = s · B · A`, prepared for a bank: its factors in f64, its
/// norm, and the blocks whose Gram matrices are those of the normalized `X` on each side.
struct MemberFactors {
    /// `out × r`.
    var b: Matrix<Double>
    /// `r × in`.
    var a: Matrix<Double>
    var scale: Double
    /// `‖s · B · A‖_F`.
    var norm: Double
    /// Triangles of the thin QRs `Aᵀ = Q_A R_A` and `B = Q_B R_B` (their rows are `min(r, in)` and
    /// `min(r, out)`).
    var triangleA: Matrix<Double>
    var triangleB: Matrix<Double>

    /// The exact factors of `module`'s update (`LowRankForm.orDense`: dense only for forms without
    /// factors).
    init(_ module: AdapterModule, in adapter: Adapter) throws {
        let f = try LowRankForm.orDense(module, in: adapter)
        try self.init(b: f.b, a: f.a, scale: module.scale, name: module.name)
    }

    init(b: Matrix<Double>, a: Matrix<Double>, scale: Double, name: String) throws {
        guard b.storage.allSatisfy(\.isFinite), a.storage.allSatisfy(\.isFinite) else {
            throw ConvertError(.nonFiniteValues, "module \(name): the update holds NaN or infinite values")
        }
        self.b = b
        self.a = a
        self.scale = scale
        triangleA = LA.qr(a.transposed()).r
        triangleB = LA.qr(b).r
        norm = abs(scale) * ErrorMeasure.frobenius(LA.mul(triangleB, triangleA, tb: true).storage)
    }

    /// `K_out = (s/‖X‖) · B · R_Aᵀ` (`out × min(r, in)`): `K Kᵀ = X Xᵀ/‖X‖²`. Zero for a zero update.
    var outBlock: Matrix<Double> { Self.scaled(LA.mul(b, triangleA, tb: true), by: norm > 0 ? scale / norm : 0) }

    /// `K_in = (s/‖X‖) · Aᵀ · R_Bᵀ` (`in × min(r, out)`): `K Kᵀ = Xᵀ X/‖X‖²`.
    var inBlock: Matrix<Double> { Self.scaled(LA.mul(a, triangleB, ta: true, tb: true), by: norm > 0 ? scale / norm : 0) }

    /// The core of this update in orthonormal bases `U`, `V`: `Uᵀ B A V` (`k_out × k_in`, unscaled).
    func core(outBasis u: Matrix<Double>, inBasis v: Matrix<Double>) -> Matrix<Double> {
        LA.mul(LA.mul(u, b, ta: true), LA.mul(a, v))
    }

    /// `‖X − s·U·core·Vᵀ‖_F / ‖X‖_F`, from factors (`ErrorMeasure`: nothing cancels). The absolute
    /// error for a zero update.
    func relativeError(outBasis u: Matrix<Double>, core: Matrix<Double>, inBasis v: Matrix<Double>) -> Double {
        let approx = LowRankForm(b: LA.mul(u, core), a: v.transposed())
        let d = ErrorMeasure.differenceNorm(LowRankForm(b: b, a: a), scale: scale, approx, scale: scale)
        return norm > 0 ? d / norm : d
    }

    static func scaled(_ m: Matrix<Double>, by s: Double) -> Matrix<Double> {
        var m = m
        for i in m.storage.indices { m.storage[i] *= s }
        return m
    }
}
