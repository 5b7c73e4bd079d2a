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
            let alpha = Float(s)
            w.withUnsafeMutableBufferPointer { c in
                af.withUnsafeBufferPointer { ap in
                    bf.withUnsafeBufferPointer { bp in
                        if module.layout == .outIn {
                            // C[out, in] += alpha · B[out, r] · A[r, in]
                            addProduct(c, rows: out, cols: inn, depth: r, alpha: alpha,
                                       left: { i, k in bp[i * r + k] }, right: ap, rightStride: inn)
                        } else {
                            // C[in, out] += alpha · Aᵀ[in, r] · Bᵀ[r, out]
                            let bt = (0..<(r * out)).map { idx in bp[(idx % out) * r + idx / out] }
                            bt.withUnsafeBufferPointer { btp in
                                addProduct(c, rows: inn, cols: out, depth: r, alpha: alpha,
                                           left: { i, k in ap[k * inn + i] }, right: btp, rightStride: out)
                            }
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

    /// C += alpha · L · R with L given elementwise (rows × depth) and R row-major (depth × cols).
    /// Placeholder until the packed GEMM lands.
    static func addProduct(_ c: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, depth: Int, alpha: Float,
                           left: (Int, Int) -> Float, right: UnsafeBufferPointer<Float>, rightStride: Int) {
        var rowAcc = [Float](repeating: 0, count: cols)
        for i in 0..<rows {
            for j in 0..<cols { rowAcc[j] = 0 }
            for k in 0..<depth {
                let l = left(i, k)
                for j in 0..<cols { rowAcc[j] += l * right[k * rightStride + j] }
            }
            for j in 0..<cols { c[i * cols + j] += alpha * rowAcc[j] }
        }
    }
}
