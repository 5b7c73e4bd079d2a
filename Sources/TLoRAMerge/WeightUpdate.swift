import TLoRAConvert
import TLoRAModel
import TLoRANumerics

/// Adds one module's update to a base weight held as f32 in the base's own orientation.
enum WeightUpdate {
    /// `W ← W + s · ΔW` (or `ΔWᵀ` for `in_out` layouts), then DoRA's renormalization
    /// `W ← diag(m / (‖W‖_row + ε)) · W` over the canonical rows (or the input channels' columns)
    /// when the module has a magnitude; IA³ multiplies instead (`W ← W ⊙ v`).
    static func apply(_ module: AdapterModule, of adapter: Adapter, to w: inout [Float], scale extra: Double) throws {
        let s = module.scale * extra
        let (out, inn) = (module.outFeatures, module.inFeatures)
        switch module.update {
        case .featureScale(let f):
            guard extra == 1 else { throw ConvertError(.notSupported, "module \(module.name): an IA³ rescaling cannot be merged with --scale \(extra)") }
            let v = f.vector.floats()
            let k = module.kernelSize
            for i in 0..<out {
                for j in 0..<inn {
                    let factor = f.axis == .out ? v[i] : v[j / k]
                    if module.layout == .outIn { w[i * inn + j] *= factor } else { w[j * out + i] *= factor }
                }
            }
            return
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
        if let m = module.doraMagnitude {
            renormalize(&w, magnitude: m.doubles(), out: out, in: inn, layout: module.layout, axis: module.doraAxis,
                        kernelSize: module.kernelSize, epsilon: module.doraEpsilon)
        }
    }

    /// Rows of the canonical `out × in` matrix (or, for `.in`, the columns of each input channel,
    /// all its kernel positions together) scaled to the magnitudes: `m / (‖·‖ + ε)`, norms in f64.
    static func renormalize(_ w: inout [Float], magnitude: [Double], out: Int, in inn: Int, layout: WeightLayout,
                            axis: FeatureAxis = .out, kernelSize: Int = 1, epsilon: Double = 0) {
        func group(_ i: Int, _ j: Int) -> Int { axis == .out ? i : j / kernelSize }
        var norms = [Double](repeating: 0, count: magnitude.count)
        for i in 0..<out {
            for j in 0..<inn {
                let v = Double(layout == .outIn ? w[i * inn + j] : w[j * out + i])
                norms[group(i, j)] += v * v
            }
        }
        let factors = norms.indices.map { Float(magnitude[$0] / (norms[$0].squareRoot() + epsilon)) }
        for i in 0..<out {
            for j in 0..<inn {
                if layout == .outIn { w[i * inn + j] *= factors[group(i, j)] } else { w[j * out + i] *= factors[group(i, j)] }
            }
        }
    }
}

/// Changes one module's bias: `β + s · Δβ` (LyCORIS `diff_b`) or `β ⊙ v` (IA³ on the output axis).
enum BiasUpdate {
    static func apply(_ module: AdapterModule, to bias: inout [Float], scale extra: Double) throws {
        if case .featureScale(let f) = module.update {
            let v = f.vector.floats()
            for i in bias.indices { bias[i] *= v[i] }
        } else if let delta = module.biasDelta {
            let d = delta.doubles(), s = module.scale * extra
            for i in bias.indices { bias[i] = Float(Double(bias[i]) + s * d[i]) }
        }
    }
}
