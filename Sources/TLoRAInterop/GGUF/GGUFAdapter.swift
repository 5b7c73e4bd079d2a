import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// llama.cpp LoRA adapters in GGUF (`general.type = adapter`, `adapter.type = lora`).
///
/// Conventions (llama.cpp `convert_lora_to_gguf.py`, `src/llama-adapter.cpp`): tensors
/// `blk.N.<proj>.weight.lora_a` with GGUF dims `{in, r}` (so its bytes are `A`, r × in, row-major)
/// and `.lora_b` with dims `{r, out}` (`B`, out × r); scale `alpha / r` with the single
/// `adapter.lora.alpha` and each tensor's own rank (alpha = 0 means scale 1). For Llama and Mistral
/// the converter permutes the rows of `B` for `attn_q` and `attn_k` as it permutes those weights
/// for rotary embeddings: row `(h, s, i)` of `H` heads × 2 halves × `rows/H/2` moves to `(h, i, s)`
/// (`H` = key-value heads for `attn_k`); import undoes it, export applies it.
public enum GGUFAdapter {
    /// Attention head counts, needed to undo or apply the q/k permutation.
    public struct Heads: Sendable, Equatable {
        public var attention: Int
        public var keyValue: Int

        public init(attention: Int, keyValue: Int) {
            self.attention = attention
            self.keyValue = keyValue
        }

        /// From a Hugging Face `config.json`.
        public init?(config: JSONObject) {
            guard let h = config["num_attention_heads"]?.intValue, h > 0 else { return nil }
            attention = h
            keyValue = config["num_key_value_heads"]?.intValue ?? h
            guard keyValue > 0 else { return nil }
        }

        /// From the `config.json` of a checkpoint directory, or a config file given directly; nil
        /// when there is no config or it names no head counts.
        public init?(configAt path: String) throws {
            let file = pathKind(path) == .directory ? joinPath(path, "config.json") : path
            // A base given as one weights file (a single-file checkpoint) has no config.
            guard pathKind(file) == .file, file.hasSuffix(".json") else { return nil }
            guard let config = try JSONParser.parse(try readWholeFile(path: file)).objectValue else { return nil }
            self.init(config: config)
        }
    }

    /// - Parameter heads: needed to undo the q/k permutation; when nil and `headsRequired` is false
    ///   (inspecting shapes only), permuted factors are left as stored and the metadata says so.
    public static func read(path: String, heads: Heads?, headsRequired: Bool = true) throws -> Adapter {
        try read(file: try GGUFFile(path: path), heads: heads, headsRequired: headsRequired)
    }

    public static func read(file: GGUFFile, heads: Heads?, headsRequired: Bool = true) throws -> Adapter {
        let path = file.path
        func fail(_ p: String) -> InteropError { InteropError(.invalidConfig, path, p) }
        func fail(_ code: InteropError.Code, _ p: String) -> InteropError { InteropError(code, path, p) }
        let type = file.value("general.type")?.stringValue
        guard type == "adapter" else { throw fail(.unrecognized, "general.type is \(type.map { "\"\($0)\"" } ?? "missing"), not \"adapter\": this GGUF is not a LoRA adapter") }
        guard file.value("adapter.type")?.stringValue == "lora" else { throw fail(.unrecognized, "adapter.type is not \"lora\"") }
        guard let arch = file.value("general.architecture")?.stringValue else { throw fail("general.architecture is missing") }
        guard let table = ArchitectureTable.gguf(arch) else { throw fail(.unmatchedNames, "architecture \"\(arch)\" has no name table in tlora (known: \(ArchitectureTable.all.map(\.gguf).joined(separator: ", ")))") }
        guard table.ggufLoRASupported else { throw fail(.unsupported, "LoRA adapters of architecture \"\(arch)\" are not supported in GGUF (not verified against llama.cpp)") }
        let alpha = file.value("adapter.lora.alpha")?.doubleValue ?? 0
        guard alpha.isFinite, alpha >= 0 else { throw fail("adapter.lora.alpha \(alpha) is not a finite non-negative number") }

        var pairs: [String: (a: GGUFFile.TensorInfo?, b: GGUFFile.TensorInfo?)] = [:]
        var order: [String] = []
        for t in file.tensors {
            let role: String
            let stem: String
            if t.name.hasSuffix(".lora_a") { role = "a"; stem = String(t.name.dropLast(7)) }
            else if t.name.hasSuffix(".lora_b") { role = "b"; stem = String(t.name.dropLast(7)) }
            else { throw fail(.unexpectedTensor, "tensor \(t.name) is not a LoRA factor (.lora_a / .lora_b)") }
            if pairs[stem] == nil { order.append(stem) }
            if role == "a" { pairs[stem, default: (nil, nil)].a = t } else { pairs[stem, default: (nil, nil)].b = t }
        }
        var modules: [AdapterModule] = []
        var dequantized = false
        var permutedLeftAsIs = false
        for stem in order {
            guard let a = pairs[stem]?.a, let b = pairs[stem]?.b else { throw fail(.missingTensor, "\(stem) has only one of lora_a and lora_b") }
            guard let module = table.hfModule(forGGUF: stem) else { throw fail(.unmatchedNames, "\(stem) is not a projection tlora knows for \(arch)") }
            guard a.ne.count == 2, b.ne.count == 2 else { throw fail(.shapeMismatch, "\(stem): LoRA factors must be 2-D") }
            let (inFeatures, rank) = (a.ne[0], a.ne[1])
            let (rankB, out) = (b.ne[0], b.ne[1])
            guard rank == rankB else { throw fail(.shapeMismatch, "\(stem): lora_a has rank \(rank) but lora_b has rank \(rankB)") }
            var aT = try tensor(a, shape: [rank, inFeatures], file: file)
            var bT = try tensor(b, shape: [out, rank], file: file)
            if a.type == .q8_0 || b.type == .q8_0 { dequantized = true }
            let projection = String(stem.split(separator: ".")[2])
            if let which = table.rotaryPermuted[projection] {
                if let heads {
                    let h = which == .attention ? heads.attention : heads.keyValue
                    bT = try permuteRotaryRows(bT, heads: h, inverse: true, name: stem, path: path)
                } else if headsRequired {
                    throw fail(.needsOption, "\(stem): llama.cpp permuted lora_b's rows for rotary embeddings; give the base model (--base-config DIR) or --heads and --kv-heads to undo it")
                } else {
                    permutedLeftAsIs = true
                }
            }
            var attributes: [String: String] = [:]
            if a.type == .q8_0 { attributes["gguf.type.a"] = "q8_0" }
            if b.type == .q8_0 { attributes["gguf.type.b"] = "q8_0" }
            if a.type == .q8_0 { aT = aT.reshaped([rank, inFeatures]) }
            modules.append(AdapterModule(name: module, outFeatures: out, inFeatures: inFeatures,
                                         scale: alpha == 0 ? 1 : alpha / Double(rank), update: .lowRank(a: aT, b: bT), attributes: attributes))
        }
        var metadata = AdapterMetadata()
        metadata.sourceFormat = "llama.cpp"
        metadata.architecture = arch
        metadata["gguf.alpha"] = JSONWriter.string(JSONValue(alpha))
        if let name = file.value("general.name")?.stringValue { metadata["gguf.name"] = name }
        if dequantized { metadata["gguf.dequantized"] = "q8_0 tensors were dequantized to f32 exactly (d·q is representable)" }
        if permutedLeftAsIs { metadata["gguf.rotary_permutation"] = "not undone (head counts unknown): q/k lora_b rows are in llama.cpp's order" }
        let adapter = Adapter(metadata: metadata, modules: modules)
        do { try adapter.validate() } catch let e as ModelError { throw fail(e.description) }
        return adapter
    }

    /// A tensor's values as stored (f32/f16/bf16/f64 kept, q8_0 dequantized to f32 exactly).
    static func tensor(_ t: GGUFFile.TensorInfo, shape: [Int], file: GGUFFile) throws -> StoredTensor {
        let raw = file.bytes(of: t)
        let start = file.dataStart + t.offset
        switch t.type {
        case .f32: return StoredTensor(dtype: .f32, shape: shape, bytes: TensorBytes(file: file.mappedFile, range: start..<(start + t.byteCount)))
        case .f16: return StoredTensor(dtype: .f16, shape: shape, bytes: TensorBytes(file: file.mappedFile, range: start..<(start + t.byteCount)))
        case .bf16: return StoredTensor(dtype: .bf16, shape: shape, bytes: TensorBytes(file: file.mappedFile, range: start..<(start + t.byteCount)))
        case .f64: return StoredTensor(dtype: .f64, shape: shape, bytes: TensorBytes(file: file.mappedFile, range: start..<(start + t.byteCount)))
        case .q8_0: return StoredTensor(Q8_0.dequantize(raw, count: t.elementCount), shape: shape, dtype: .f32)
        default: throw InteropError(.unsupported, file.path, "tensor \(t.name) is \(t.type); tlora reads F32, F16, BF16, F64 and Q8_0 adapter tensors")
        }
    }

    /// llama.cpp's rotary permutation of rows: with `rows = heads · 2 · half`, the converter maps row
    /// (h, s, i) to (h, i, s). `inverse` undoes it.
    public static func permuteRotaryRows(_ t: StoredTensor, heads: Int, inverse: Bool, name: String, path: String) throws -> StoredTensor {
        let rows = t.shape[0], cols = t.shape[1], w = t.dtype.byteWidth
        guard heads > 0, rows % (heads * 2) == 0 else {
            throw InteropError(.shapeMismatch, path, "\(name): \(rows) rows do not split into \(heads) heads × 2 rotary halves")
        }
        let half = rows / heads / 2
        var out = [UInt8](repeating: 0, count: t.bytes.count)
        t.bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                for h in 0..<heads {
                    for s in 0..<2 {
                        for i in 0..<half {
                            let original = (h * 2 + s) * half + i      // (h, s, i)
                            let permuted = (h * half + i) * 2 + s      // (h, i, s)
                            let (from, to) = inverse ? (permuted, original) : (original, permuted)
                            dst.baseAddress!.advanced(by: to * cols * w).copyMemory(from: src.baseAddress!.advanced(by: from * cols * w), byteCount: cols * w)  // safe: rows > 0
                        }
                    }
                }
            }
        }
        return StoredTensor(dtype: t.dtype, shape: t.shape, bytes: out)
    }
}

/// ggml's Q8_0: blocks of 32 values, each an f16 scale `d` then 32 signed bytes `q`; value = d·q.
enum Q8_0 {
    static func dequantize(_ raw: UnsafeRawBufferPointer, count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        let blocks = count / 32
        for b in 0..<blocks {
            let base = b * 34
            var d: Float = 0
            let bits = raw.loadUnaligned(fromByteOffset: base, as: UInt16.self)
            withUnsafePointer(to: bits) { p in
                withUnsafeMutablePointer(to: &d) { dp in tlora_f16_decode_one(p, dp) }
            }
            for i in 0..<32 { out[b * 32 + i] = d * Float(Int8(bitPattern: raw[base + 2 + i])) }
        }
        return out
    }

    /// ggml's quantizer: d = max|x| / 127 (rounded to f16), q = round(x / d).
    static func quantize(_ values: [Float]) -> [UInt8] {
        precondition(values.count % 32 == 0)
        var out = [UInt8](repeating: 0, count: values.count / 32 * 34)
        for b in 0..<(values.count / 32) {
            var amax: Float = 0
            for i in 0..<32 { amax = max(amax, abs(values[b * 32 + i])) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            let half = ElementConversion.bytes(from: [d], as: .f16)
            out[b * 34] = half[0]
            out[b * 34 + 1] = half[1]
            for i in 0..<32 {
                let q = (values[b * 32 + i] * id).rounded(.toNearestOrAwayFromZero)
                out[b * 34 + 2 + i] = UInt8(bitPattern: Int8(max(-128, min(127, q))))
            }
        }
        return out
    }
}

import CTLoRAKernels

/// One f16 → f32 conversion through the kernels (keeps a single implementation of the format).
@inline(__always) func tlora_f16_decode_one(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>) {
    tlora_f16_to_f32(src, dst, 1)
}
