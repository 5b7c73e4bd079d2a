import TLoRAIO
import TLoRAModel
import TLoRANumerics

extension LyCORISModule {
    /// A module's tensors as LyCORIS and kohya write them (suffix → tensor, the inverse of `read`):
    /// what `read` gave comes back bit for bit, `alpha` in the dtype it had.
    ///
    /// LoRA/LoCon, Tucker LoCon, LoHa (two low-rank or two Tucker factors), LoKr and full updates are
    /// written as such; other forms must be converted to LoRA first. A scale that `α / r` cannot carry
    /// (full updates and LoKr with two full factors have none) is multiplied into `diff` / `W1`, which
    /// rounds once to their dtype.
    ///
    /// - Throws: `InteropError` naming `path` and the module when the form has no LyCORIS spelling.
    public static func tensors(for m: AdapterModule, path: String) throws -> [(suffix: String, tensor: StoredTensor)] {
        func fail(_ problem: String) -> InteropError { InteropError(.unsupported, path, "module \(m.name): \(problem)") }
        func fail(_ code: InteropError.Code, _ problem: String) -> InteropError { InteropError(code, path, "module \(m.name): \(problem)") }
        let conv = m.kernel.count
        let pointwise = [Int](repeating: 1, count: conv)
        var out: [(String, StoredTensor)] = []
        var rank: Int? = nil
        switch m.update {
        case .lowRank(let a, let b):
            out = [("lora_down.weight", a.reshaped([a.shape[0], m.inChannels] + m.kernel)), ("lora_up.weight", b.reshaped(b.shape + pointwise))]
            rank = a.shape[0]
        case .convTucker(let t):
            out = [("lora_down.weight", t.a.reshaped(t.a.shape + pointwise)), ("lora_mid.weight", t.core),
                   ("lora_up.weight", t.b.reshaped(t.b.shape + pointwise))]
            rank = t.b.shape[1]
        case .hadamard(let h):
            for (k, p) in [h.p1, h.p2].enumerated() {
                switch p {
                case .lowRank(let a, let b):
                    out += [("hada_w\(k + 1)_a", b), ("hada_w\(k + 1)_b", a)]
                    if k == 0 { rank = a.shape[0] }
                case .tucker(let t):
                    out += [("hada_w\(k + 1)_a", t.b.transposed()), ("hada_w\(k + 1)_b", t.a), ("hada_t\(k + 1)", t.core)]
                    if k == 0 { rank = t.a.shape[0] }
                case .full:
                    throw fail("a Hadamard factor held whole has no LoHa spelling (convert it to LoRA)")
                }
            }
        case .kronecker(let k):
            var scale = m.scale
            switch k.w1 {
            case .full(let w):
                out.append(("lokr_w1", w))
            case .lowRank(let a, let b):
                out += [("lokr_w1_a", b), ("lokr_w1_b", a)]
                rank = a.shape[0]
            case .tucker:
                throw fail("a Tucker core on the first Kronecker factor has no LoKr spelling")
            }
            switch k.w2 {
            case .full(let w):
                out.append(("lokr_w2", w.reshaped([w.shape[0], m.inChannels / max(kernelColumns(k.w1), 1)] + m.kernel)))
            case .lowRank(let a, let b):
                out += [("lokr_w2_a", b), ("lokr_w2_b", a)]
                rank = a.shape[0]
            case .tucker(let t):
                out += [("lokr_w2_a", t.b.transposed()), ("lokr_w2_b", t.a), ("lokr_t2", t.core)]
                rank = t.a.shape[0]
            }
            if rank == nil, scale != 1 {
                // Two full factors: LyCORIS's scale is 1, so the scale goes into W1 (rounded once).
                out[0].1 = scaled(out[0].1, by: scale)
                scale = 1
            }
        case .dense(let d):
            var diff = d.reshaped([d.shape[0], m.inChannels] + m.kernel)
            var bias = m.biasDelta
            if m.scale != 1 {
                diff = scaled(diff, by: m.scale)
                bias = bias.map { scaled($0, by: m.scale) }
            }
            out.append(("diff", diff))
            if let bias { out.append(("diff_b", bias)) }
        default:
            throw fail("a \(m.update.kind.rawValue) update has no LyCORIS spelling (convert it to LoRA first)")
        }
        if m.biasDelta != nil, !isDense(m.update) { throw fail("a bias change goes only with a full (diff) update in LyCORIS files") }
        if let r = rank {
            out.append(("alpha", alpha(for: m, rank: r)))
        } else if case .kronecker = m.update, let text = m.attributes["lycoris.alpha"], let a = Double(text),
                  let name = m.attributes["lycoris.alpha_dtype"], let stored = scalarTensor(a, dtypeName: name) {
            // Two full factors: LyCORIS ignores alpha (scale 1), but the file had one; keep it.
            out.append(("alpha", stored))
        }
        if let mag = m.doraMagnitude {
            // A conv read without its kernel kept its dora_scale's dimensions.
            let ones = m.kernel.isEmpty ? [Int](repeating: 1, count: max((m.attributes["lycoris.dora_dims"].flatMap { Int($0) } ?? 2) - 2, 0)) : pointwise
            let shape = m.doraAxis == .out ? [m.outFeatures, 1] + ones : [1, m.inChannels] + ones
            out.append(("dora_scale", mag.reshaped(shape)))
        }
        return out
    }

    static func isDense(_ u: ModuleUpdate) -> Bool {
        if case .dense = u { return true }
        return false
    }

    /// Columns of a Kronecker factor (W1 has no kernel).
    static func kernelColumns(_ f: FactorMatrix) -> Int {
        switch f {
        case .full(let m): return m.shape[1]
        case .lowRank(let a, _): return a.shape[1]
        case .tucker(let t): return t.cols
        }
    }

    /// `t · s`, computed in f64 and rounded once to `t`'s dtype.
    static func scaled(_ t: StoredTensor, by s: Double) -> StoredTensor {
        StoredTensor(t.doubles().map { $0 * s }, shape: t.shape, dtype: t.dtype)
    }

    /// The 0-d `alpha` with `alpha / r == scale`: the value the module was read with when it still says
    /// so, in its dtype; else `scale · r` in f32 when that is exact, f64 otherwise.
    static func alpha(for m: AdapterModule, rank r: Int) -> StoredTensor {
        if let text = m.attributes["lycoris.alpha"], let a = Double(text), a / Double(r) == m.scale || (a == 0 && m.scale == 1),
           let name = m.attributes["lycoris.alpha_dtype"], let stored = scalarTensor(a, dtypeName: name) {
            return stored
        }
        let a = PEFTWriter.exactAlpha(rank: r, scale: m.scale)
        if Double(Float(a)) == a, Double(Float(a)) / Double(r) == m.scale { return StoredTensor([Float(a)], shape: [], dtype: .f32) }
        return StoredTensor([a], shape: [], dtype: .f64)
    }

    /// `value` as a 0-d tensor of a safetensors dtype, when it is exactly representable there.
    static func scalarTensor(_ value: Double, dtypeName: String) -> StoredTensor? {
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else { return nil }
        if let f = dtype.floatType {
            let t = StoredTensor([value], shape: [], dtype: f)
            return t.doubles()[0] == value ? t : nil
        }
        return nil  // integer alphas (diffusers' int64) come back as f32 when exact: StoredTensor holds floats
    }
}
