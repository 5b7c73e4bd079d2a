import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// One module of a LyCORIS or kohya file: the tensors under one flattened name
/// (`lora_unet_…_to_q.lora_down.weight`, `….alpha`, `….hada_w1_a`, …), read into an `AdapterModule`
/// whose `target` is still that flattened name (resolution against a base is `ModuleNameIndex`'s).
///
/// Semantics (LyCORIS 4.1.3 `modules/*.py` and `functional/*.py`, sd-scripts `networks/lora.py`,
/// ComfyUI's loader), with `U` the unscaled update and `ΔW = scale · U` (out × in·K for a conv of K
/// kernel positions, PyTorch's row-major weight layout):
///
/// | tensors | update | scale |
/// |---|---|---|
/// | `lora_down` `[r, in(, kh, kw)]`, `lora_up` `[out, r(, 1, 1)]` | LoRA / LoCon `U = up · down` | `α / r` |
/// | + `lora_mid` `[r, r, kh, kw]` (then `lora_down` is `[r, in, 1, 1]`) | Tucker conv `U = up · mid · down` | `α / r` |
/// | `hada_w1_a` `[out, r]`, `hada_w1_b` `[r, in·K]`, `hada_w2_*` | LoHa `U = (w1a w1b) ⊙ (w2a w2b)` | `α / r`, `r` = `w1_b` rows |
/// | + `hada_t1`, `hada_t2` `[r, r, kh, kw]` (then `hada_w*_a` is `[r, out]`, `hada_w*_b` `[r, in]`) | LoHa of two Tucker convs | `α / r` |
/// | `lokr_w1` `[a, c]` or `lokr_w1_a` `[a, r]` + `lokr_w1_b` `[r, c]`; `lokr_w2` `[b, d(, kh, kw)]` or `lokr_w2_a` `[b, r]` + `lokr_w2_b` `[r, d·K]`, or with `lokr_t2` `[r, r, kh, kw]` `lokr_w2_a` `[r, b]` + `lokr_w2_b` `[r, d]` | LoKr `U = W1 ⊗ W2` | `α / r` (`r` = `w2_b` rows, else `w1_b` rows) when a factor is decomposed; **1** when both are full (LyCORIS then ignores `α`, which trainers fill with the dim or a placeholder) |
/// | `diff` `[out, in(, kh, kw)]`, `diff_b` `[out]` | full `U = diff`, bias `+ diff_b` | 1 |
///
/// `α` absent or 0 means `α = r`. `dora_scale` is DoRA's magnitude: `[out, 1(, 1, 1)]` on the output
/// axis (LyCORIS `wd_on_out`), `[1, in(, 1, 1)]` on the input channels; LyCORIS adds the magnitude
/// dtype's machine epsilon to each norm (`torch.finfo(dora_scale.dtype).eps`).
public enum LyCORISModule {
    /// Every tensor suffix a module may have.
    public static let suffixes: Set<String> = [
        "lora_down.weight", "lora_up.weight", "lora_mid.weight", "alpha", "dora_scale",
        "hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2",
        "lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2",
        "diff", "diff_b",
    ]

    /// Suffixes of LyCORIS algorithms tlora does not read, with the algorithm's name.
    static let unsupported: [(suffix: String, algorithm: String)] = [
        ("oft_blocks", "OFT"), ("oft_diag", "OFT"), ("oft_R", "BOFT"), ("boft_", "BOFT"), ("on_input", "IA³"),
        ("a1.weight", "GLoRA"), ("a2.weight", "GLoRA"), ("b1.weight", "GLoRA"), ("b2.weight", "GLoRA"),
        ("lora_A", "PEFT-named LoRA"), ("scalar", "scalar-scaled LoRA"),
    ]

    /// `<module>.<suffix>` → (module, suffix): the module is everything before the first dot (flattened
    /// names have none). Nil when there is no dot.
    public static func split(_ key: String) -> (module: String, suffix: String)? {
        guard let dot = key.firstIndex(of: "."), dot != key.startIndex else { return nil }
        return (String(key[..<dot]), String(key[key.index(after: dot)...]))
    }

    /// Reads one module from its tensors (suffix → tensor) and its decoded `alpha`.
    ///
    /// - Throws: `InteropError` naming `path` and the module for a missing, extra or misshapen tensor.
    public static func read(name: String, tensors: [String: StoredTensor], alpha: Double?, path: String) throws -> AdapterModule {
        func fail(_ problem: String) -> InteropError { InteropError(.shapeMismatch, path, "module \(name): \(problem)") }
        func fail(_ code: InteropError.Code, _ problem: String) -> InteropError { InteropError(code, path, "module \(name): \(problem)") }
        func need(_ s: String) throws -> StoredTensor {
            guard let t = tensors[s] else { throw fail(.missingTensor, "has \(tensors.keys.sorted().joined(separator: ", ")) but no \(s)") }
            return t
        }
        for s in tensors.keys where !suffixes.contains(s) {
            if let u = unsupported.first(where: { s.hasPrefix($0.suffix) }) {
                throw fail(.unsupported, "\(s) belongs to LyCORIS \(u.algorithm), which tlora does not read")
            }
            throw fail(.unexpectedTensor, "unknown tensor \(s)")
        }
        if let alpha, !alpha.isFinite { throw fail(.nonFiniteValues, "alpha is \(alpha)") }
        let families = [
            ("lora", tensors.keys.contains { $0.hasPrefix("lora_") }), ("hada", tensors.keys.contains { $0.hasPrefix("hada_") }),
            ("lokr", tensors.keys.contains { $0.hasPrefix("lokr_") }), ("diff", tensors.keys.contains { $0.hasPrefix("diff") }),
        ].filter(\.1).map(\.0)
        guard families.count == 1 else {
            throw fail(families.isEmpty ? "holds no update tensors (only \(tensors.keys.sorted().joined(separator: ", ")))"
                                        : "mixes \(families.joined(separator: " and ")) tensors")
        }
        var shape: Shape
        switch families[0] {
        case "lora": shape = try loRA(tensors, need: need, fail: fail)
        case "hada": shape = try loHa(tensors, need: need, fail: fail)
        case "lokr": shape = try loKr(tensors, need: need, fail: fail)
        default: shape = try full(tensors, need: need, fail: fail)
        }
        // α / r, α = r when absent or 0 (kohya and LyCORIS both); 1 for full and undecomposed LoKr.
        let scale: Double
        if let r = shape.rank {
            let a = (alpha ?? 0) == 0 ? Double(r) : alpha!  // safe: checked non-nil just before
            scale = a / Double(r)
        } else {
            scale = 1
        }
        var magnitude: StoredTensor? = nil
        var doraDims: Int? = nil
        var axis = FeatureAxis.out
        var epsilon = 0.0
        if let m = tensors["dora_scale"] {
            guard families[0] != "diff" else { throw fail(.unsupported, "dora_scale on a full (diff) update") }
            let channels = shape.inFeatures / max(shape.kernel.reduce(1, *), 1)
            let trailing = m.shape.dropFirst(2)
            guard m.shape.count >= 2, trailing.allSatisfy({ $0 == 1 }) else { throw fail("dora_scale has shape \(m.shape)") }
            if m.shape[0] == shape.outFeatures && m.shape[1] == 1 {
                axis = .out
                magnitude = m.reshaped([shape.outFeatures])
            } else if m.shape[0] == 1 && m.shape[1] == channels {
                axis = .in
                magnitude = m.reshaped([channels])
            } else {
                throw fail("dora_scale of shape \(m.shape) fits neither the \(shape.outFeatures) outputs nor the \(channels) input channels")
            }
            epsilon = machineEpsilon(m.dtype)
            // A conv's dora_scale is 4-D even when its factors are flattened (LoKr or LoHa without
            // Tucker cores): on the input axis one value per column means a 1×1 kernel; on the output
            // axis the kernel stays unknown (the base gives it) and the dimensions are kept for export.
            if shape.kernel.isEmpty, m.shape.count > 2 {
                if axis == .in {
                    shape.kernel = [Int](repeating: 1, count: m.shape.count - 2)
                } else {
                    doraDims = m.shape.count
                }
            }
        }
        var attributes = ["lycoris.algo": families[0] == "diff" ? "full" : families[0]]
        if let alpha { attributes["lycoris.alpha"] = String(alpha) }
        if let doraDims { attributes["lycoris.dora_dims"] = String(doraDims) }
        return AdapterModule(name: name, target: name, kind: .linear, layout: .outIn, outFeatures: shape.outFeatures,
                             inFeatures: shape.inFeatures, scale: scale, update: shape.update, doraMagnitude: magnitude,
                             doraAxis: axis, doraEpsilon: epsilon, kernel: shape.kernel, biasDelta: shape.bias,
                             attributes: attributes)
    }

    /// What the tensors of one family say.
    struct Shape {
        var update: ModuleUpdate
        var outFeatures: Int
        var inFeatures: Int
        var kernel: [Int]
        /// The `r` of `α / r`, or nil when the scale is 1.
        var rank: Int?
        var bias: StoredTensor? = nil
    }

    /// `[r, c, 1, 1]` → `[r, c]` (a 1×1 conv factor); any other shape unchanged.
    static func squeezedPointwise(_ t: StoredTensor) -> StoredTensor {
        t.shape.count > 2 && t.shape.dropFirst(2).allSatisfy({ $0 == 1 }) ? t.reshaped(Array(t.shape.prefix(2))) : t
    }

    /// A 2-D `[rows, cols]` tensor, or a 3-5-D one read as `[rows, ∏ rest]` with the trailing sizes as kernel.
    static func matrix(_ t: StoredTensor, _ what: String, fail: (String) -> InteropError) throws -> (StoredTensor, kernel: [Int]) {
        switch t.shape.count {
        case 2: return (t, [])
        case 3...5:
            let rest = Array(t.shape.dropFirst())
            guard let cols = CheckedSize.product(rest) else { throw fail("\(what) has shape \(t.shape)") }
            return (t.reshaped([t.shape[0], cols]), Array(t.shape.dropFirst(2)))
        default: throw fail("\(what) has shape \(t.shape), not a matrix or a conv kernel")
        }
    }

    static func loRA(_ t: [String: StoredTensor], need: (String) throws -> StoredTensor, fail: (String) -> InteropError) throws -> Shape {
        let down = try need("lora_down.weight"), upRaw = try need("lora_up.weight")
        let up = squeezedPointwise(upRaw)
        guard up.shape.count == 2 else { throw fail("lora_up has shape \(upRaw.shape); it must be [out, r] or [out, r, 1, 1]") }
        let r = up.shape[1]
        guard r > 0, down.shape.first == r else { throw fail("lora_down has shape \(down.shape) but lora_up has rank \(r)") }
        if let mid = t["lora_mid.weight"] {
            // Tucker: down is a 1×1 conv [r, in, 1, 1], mid the kernel [r, r, kh, kw].
            let a = squeezedPointwise(down)
            guard a.shape.count == 2, mid.shape.count >= 3, mid.shape[0] == r, mid.shape[1] == a.shape[0] else {
                throw fail("lora_mid has shape \(mid.shape) with lora_down \(down.shape) and lora_up \(upRaw.shape)")
            }
            let kernel = Array(mid.shape.dropFirst(2))
            guard let k = CheckedSize.product(kernel), let cols = CheckedSize.multiply(a.shape[1], k) else { throw fail("lora_mid has shape \(mid.shape)") }
            return Shape(update: .convTucker(TuckerFactors(core: mid, a: a, b: up)), outFeatures: up.shape[0], inFeatures: cols, kernel: kernel, rank: r)
        }
        let (a, kernel) = try matrix(down, "lora_down", fail: fail)
        return Shape(update: .lowRank(a: a, b: up), outFeatures: up.shape[0], inFeatures: a.shape[1], kernel: kernel, rank: r)
    }

    static func loHa(_ t: [String: StoredTensor], need: (String) throws -> StoredTensor, fail: (String) -> InteropError) throws -> Shape {
        let w1a = try need("hada_w1_a"), w1b = try need("hada_w1_b"), w2a = try need("hada_w2_a"), w2b = try need("hada_w2_b")
        guard [w1a, w1b, w2a, w2b].allSatisfy({ $0.shape.count == 2 }) else {
            throw fail("LoHa factors must be matrices: \([w1a, w1b, w2a, w2b].map(\.shape))")
        }
        let r = w1b.shape[0]
        if let t1 = t["hada_t1"] {
            let t2 = try need("hada_t2")
            // Tucker: w*_a is [r, out] (the out side transposed), w*_b is [r, in], t* is [r, r, kh, kw].
            guard t1.shape.count >= 3, t1.shape == t2.shape, w1a.shape == w2a.shape, w1b.shape == w2b.shape,
                  t1.shape[0] == w1a.shape[0], t1.shape[1] == w1b.shape[0] else {
                throw fail("LoHa Tucker shapes do not fit: t \(t1.shape)/\(t2.shape), w_a \(w1a.shape)/\(w2a.shape), w_b \(w1b.shape)/\(w2b.shape)")
            }
            let kernel = Array(t1.shape.dropFirst(2))
            guard let k = CheckedSize.product(kernel), let cols = CheckedSize.multiply(w1b.shape[1], k) else { throw fail("hada_t1 has shape \(t1.shape)") }
            let p1 = FactorMatrix.tucker(TuckerFactors(core: t1, a: w1b, b: w1a.transposed()))
            let p2 = FactorMatrix.tucker(TuckerFactors(core: t2, a: w2b, b: w2a.transposed()))
            return Shape(update: .hadamard(Hadamard(p1: p1, p2: p2)), outFeatures: w1a.shape[1], inFeatures: cols, kernel: kernel, rank: r)
        }
        if t["hada_t2"] != nil { throw fail("hada_t2 without hada_t1") }
        guard w1a.shape[1] == r, w2a.shape[1] == w2b.shape[0], w1a.shape[0] == w2a.shape[0], w1b.shape[1] == w2b.shape[1] else {
            throw fail("LoHa factor shapes do not fit: w1 \(w1a.shape)·\(w1b.shape), w2 \(w2a.shape)·\(w2b.shape)")
        }
        return Shape(update: .hadamard(Hadamard(p1: .lowRank(a: w1b, b: w1a), p2: .lowRank(a: w2b, b: w2a))),
                     outFeatures: w1a.shape[0], inFeatures: w1b.shape[1], kernel: [], rank: r)
    }

    static func loKr(_ t: [String: StoredTensor], need: (String) throws -> StoredTensor, fail: (String) -> InteropError) throws -> Shape {
        var rank: Int? = nil
        // W1: full [a, c] or w1_a [a, r] · w1_b [r, c].
        let w1: FactorMatrix
        if let full = t["lokr_w1"] {
            guard t["lokr_w1_a"] == nil, t["lokr_w1_b"] == nil else { throw fail("has both lokr_w1 and lokr_w1_a/_b") }
            guard full.shape.count == 2 else { throw fail("lokr_w1 has shape \(full.shape)") }
            w1 = .full(full)
        } else {
            let a = try need("lokr_w1_a"), b = try need("lokr_w1_b")
            guard a.shape.count == 2, b.shape.count == 2, a.shape[1] == b.shape[0] else { throw fail("lokr_w1_a \(a.shape) and lokr_w1_b \(b.shape) do not chain") }
            w1 = .lowRank(a: b, b: a)
            rank = b.shape[0]
        }
        // W2: full [b, d(, kernel)], w2_a [b, r] · w2_b [r, d·K], or Tucker (t2, w2_a [r, b], w2_b [r, d]).
        let w2: FactorMatrix
        var kernel: [Int] = []
        if let full = t["lokr_w2"] {
            guard t["lokr_w2_a"] == nil, t["lokr_w2_b"] == nil, t["lokr_t2"] == nil else { throw fail("has both lokr_w2 and its factors") }
            let (m, k) = try matrix(full, "lokr_w2", fail: fail)
            w2 = .full(m)
            kernel = k
        } else {
            let a = try need("lokr_w2_a"), b = try need("lokr_w2_b")
            guard a.shape.count == 2, b.shape.count == 2 else { throw fail("lokr_w2_a \(a.shape) and lokr_w2_b \(b.shape) must be matrices") }
            if let core = t["lokr_t2"] {
                guard core.shape.count >= 3, core.shape[0] == a.shape[0], core.shape[1] == b.shape[0] else {
                    throw fail("lokr_t2 \(core.shape) does not fit lokr_w2_a \(a.shape) and lokr_w2_b \(b.shape)")
                }
                kernel = Array(core.shape.dropFirst(2))
                w2 = .tucker(TuckerFactors(core: core, a: b, b: a.transposed()))
            } else {
                guard a.shape[1] == b.shape[0] else { throw fail("lokr_w2_a \(a.shape) and lokr_w2_b \(b.shape) do not chain") }
                w2 = .lowRank(a: b, b: a)
            }
            rank = b.shape[0]
        }
        let (a, c) = size(w1), (b, e) = size(w2)
        guard let out = CheckedSize.multiply(a, b), let inn = CheckedSize.multiply(c, e) else { throw fail("Kronecker sizes overflow") }
        return Shape(update: .kronecker(Kronecker(w1: w1, w2: w2)), outFeatures: out, inFeatures: inn, kernel: kernel, rank: rank)
    }

    /// Rows and columns of a factor (a Tucker factor's columns carry its kernel).
    static func size(_ f: FactorMatrix) -> (Int, Int) {
        switch f {
        case .full(let m): return (m.shape[0], m.shape[1])
        case .lowRank(let a, let b): return (b.shape[0], a.shape[1])
        case .tucker(let t): return (t.rows, t.cols)
        }
    }

    static func full(_ t: [String: StoredTensor], need: (String) throws -> StoredTensor, fail: (String) -> InteropError) throws -> Shape {
        let diff = try need("diff")
        let (m, kernel) = try matrix(diff, "diff", fail: fail)
        var s = Shape(update: .dense(m), outFeatures: m.shape[0], inFeatures: m.shape[1], kernel: kernel, rank: nil)
        if let b = t["diff_b"] {
            guard b.shape == [m.shape[0]] else { throw fail("diff_b has shape \(b.shape) for \(m.shape[0]) outputs") }
            s.bias = b
        }
        return s
    }

    /// `torch.finfo(dtype).eps`.
    static func machineEpsilon(_ d: DType) -> Double {
        switch d {
        case .f64: return Double.ulpOfOne
        case .f32: return Double(Float.ulpOfOne)
        case .f16: return 0x1p-10
        case .bf16: return 0x1p-7
        }
    }
}
