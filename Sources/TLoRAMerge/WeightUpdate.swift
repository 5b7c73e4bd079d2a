import TLoRAConvert
import TLoRAModel
import TLoRANumerics

/// Adds one module's update to a base weight held as f32 in the base's own orientation.
enum WeightUpdate {
    /// `W ← W + s · ΔW` (or `ΔWᵀ` for `in_out` layouts), then DoRA's renormalization
    /// `W ← diag(m / ‖W‖_row) · W` over the canonical rows when the module has a magnitude.
    static func apply(_ module: AdapterModule, of adapter: Adapter, to w: inout [Float], scale extra: Double) throws {
        let s = module.scale * extra
        let (out, inn) = (module.outFeatures, module.inFeatures)
        switch module.update {
        case .lowRank(let a, let b):
            let af = a.floats(), bf = b.floats()
            let r = a.shape[0]
            w.withUnsafeMutableBufferPointer { c in
                af.withUnsafeBufferPointer { ap in
                    bf.withUnsafeBufferPointer { bp in
                        // Safe: the shapes were validated, so none of these buffers is empty.
                        if module.layout == .outIn {
                            // W[out, in] += s · B[out, r] · A[r, in]
                            GEMM.multiply(m: out, n: inn, k: r, alpha: Float(s), a: bp.baseAddress!, lda: r,
                                          b: ap.baseAddress!, ldb: inn, beta: 1, c: c.baseAddress!, ldc: inn)
                        } else {
                            // W[in, out] += s · Aᵀ · Bᵀ
                            GEMM.multiply(transposeA: true, transposeB: true, m: inn, n: out, k: r, alpha: Float(s),
                                          a: ap.baseAddress!, lda: inn, b: bp.baseAddress!, ldb: r, beta: 1, c: c.baseAddress!, ldc: out)
                        }
                    }
                }
            }
        default:
            let delta = try DenseDelta.unscaled(module, in: adapter)
            for i in 0..<out {
                for j in 0..<inn {
                    let v = Float(s * delta.storage[i * inn + j])
                    if module.layout == .outIn { w[i * inn + j] += v } else { w[j * out + i] += v }
                }
            }
        }
        if let m = module.doraMagnitude { renormalize(&w, magnitude: m.doubles(), out: out, in: inn, layout: module.layout) }
    }

    /// Rows of the canonical `out × in` matrix scaled to the magnitudes (norms in f64).
    static func renormalize(_ w: inout [Float], magnitude: [Double], out: Int, in inn: Int, layout: WeightLayout) {
        var norms = [Double](repeating: 0, count: out)
        for i in 0..<out {
            for j in 0..<inn {
                let v = Double(layout == .outIn ? w[i * inn + j] : w[j * out + i])
                norms[i] += v * v
            }
        }
        let factors = (0..<out).map { Float(magnitude[$0] / norms[$0].squareRoot()) }
        for i in 0..<out {
            for j in 0..<inn {
                if layout == .outIn { w[i * inn + j] *= factors[i] } else { w[j * out + i] *= factors[i] }
            }
        }
    }
}
