import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// Writes LoRA adapters as GGUF v3 files that llama.cpp and gguf-py read.
public enum GGUFWriter {
    public struct Report: Sendable {
        public var alpha: Double
        /// Modules whose scale is not `alpha / r`: their `B` was multiplied by the difference.
        public var bakedModules: [String]
    }

    /// - Parameters:
    ///   - architecture: GGUF architecture name (`llama`, `mistral`, `qwen2`); decides names and the
    ///     q/k permutation.
    ///   - heads: needed when the architecture permutes q/k.
    public static func write(_ adapter: Adapter, architecture: String, heads: GGUFAdapter.Heads?, to path: String, overwrite: Bool) throws -> Report {
        func fail(_ p: String) -> InteropError { InteropError(.unsupported, path, p) }
        func fail(_ code: InteropError.Code, _ p: String) -> InteropError { InteropError(code, path, p) }
        guard let table = ArchitectureTable.gguf(architecture) else {
            throw fail(.unmatchedNames, "architecture \"\(architecture)\" has no GGUF name table (known: \(ArchitectureTable.all.filter(\.ggufLoRASupported).map(\.gguf).joined(separator: ", ")))")
        }
        guard table.ggufLoRASupported else { throw fail("GGUF LoRA export for \(architecture) is not supported") }
        guard adapter.replacedTensors.isEmpty else {
            throw fail("the adapter replaces whole tensors (\(adapter.replacedTensors.map(\.target).prefix(3).joined(separator: ", "))); a GGUF LoRA adapter cannot hold them")
        }
        // One global alpha: the most common alpha/r·r among modules, so most keep their factors as they are.
        var rankScale: [(name: String, rank: Int, scale: Double)] = []
        for m in adapter.modules {
            guard case .lowRank(let a, _) = m.update else { throw fail("module \(m.name) is not low-rank (convert with to-lora first)") }
            guard m.doraMagnitude == nil else {
                throw fail("module \(m.name) is DoRA: GGUF LoRA adapters have no magnitude vector, and llama.cpp applies plain LoRA")
            }
            guard m.layout == .outIn, m.kind == .linear else { throw fail("module \(m.name): only linear out×in layers go to GGUF") }
            rankScale.append((m.name, a.shape[0], m.scale))
        }
        var votes: [Double: Int] = [:]
        for r in rankScale { votes[r.scale * Double(r.rank), default: 0] += 1 }
        let alpha = adapter.metadata["gguf.alpha"].flatMap(Double.init) ?? votes.max { ($0.value, -$0.key) < ($1.value, -$1.key) }?.key ?? 1
        var baked: [String] = []
        var tensors: [(String, GGMLType, [Int], [UInt8])] = []  // name, type, ne (fastest first), bytes
        for m in adapter.modules {
            guard case .lowRank(let a, var b) = m.update else { continue }
            guard let (stem, projection) = table.ggufTensor(forHF: m.name) else {
                throw fail(.unmatchedNames, "module \(m.name) has no \(architecture) GGUF name (\(table.projections.map(\.hf).joined(separator: ", ")) per layer)")
            }
            let rank = a.shape[0]
            let gguf = alpha == 0 ? 1 : alpha / Double(rank)
            if gguf != m.scale {
                // GGUF cannot say this module's scale: fold the ratio into B.
                let ratio = m.scale / gguf
                b = StoredTensor(b.doubles().map { $0 * ratio }, shape: b.shape, dtype: b.dtype)
                baked.append(m.name)
            }
            if let which = table.rotaryPermuted[projection] {
                guard let heads else { throw fail(.needsOption, "\(architecture) permutes \(projection) for rotary embeddings: give --base-config DIR or --heads/--kv-heads") }
                b = try GGUFAdapter.permuteRotaryRows(b, heads: which == .attention ? heads.attention : heads.keyValue, inverse: false, name: m.name, path: path)
            }
            tensors.append(try encode(stem + ".lora_a", a, quantize: m.attributes["gguf.type.a"] == "q8_0"))
            tensors.append(try encode(stem + ".lora_b", b, quantize: m.attributes["gguf.type.b"] == "q8_0"))
        }
        var w = ByteWriter()
        w.write(UInt32(0x4655_4747))
        w.write(UInt32(3))
        w.write(UInt64(tensors.count))
        var kv: [(String, UInt32, (inout ByteWriter) -> Void)] = [
            ("general.architecture", 8, { $0.writeGGUFString(architecture) }),
            ("general.type", 8, { $0.writeGGUFString("adapter") }),
            ("adapter.type", 8, { $0.writeGGUFString("lora") }),
        ]
        if let name = adapter.metadata["gguf.name"] { kv.append(("general.name", 8, { $0.writeGGUFString(name) })) }
        kv.append(("adapter.lora.alpha", 6, { $0.write(Float(alpha).bitPattern) }))
        w.write(UInt64(kv.count))
        for (key, type, value) in kv {
            w.writeGGUFString(key)
            w.write(type)
            value(&w)
        }
        var offset = 0
        for (name, type, ne, bytes) in tensors {
            w.writeGGUFString(name)
            w.write(UInt32(ne.count))
            for d in ne { w.write(UInt64(d)) }
            w.write(type.rawValue)
            w.write(UInt64(offset))
            offset = (offset + bytes.count + 31) / 32 * 32
        }
        w.pad(to: 32)
        let out = try AtomicFileWriter(destination: path, overwrite: overwrite, kind: .ggufAdapter)
        try out.write(w.bytes)
        let dataStart = out.bytesWritten
        for (_, _, _, bytes) in tensors {
            try out.write(bytes)
            let rem = (out.bytesWritten - dataStart) % 32
            if rem != 0 { try out.write([UInt8](repeating: 0, count: 32 - rem)) }
        }
        try out.commit()
        return Report(alpha: alpha, bakedModules: baked)
    }

    /// GGUF dims are fastest first: a row-major rows × cols matrix is `{cols, rows}`.
    static func encode(_ name: String, _ t: StoredTensor, quantize: Bool) throws -> (String, GGMLType, [Int], [UInt8]) {
        let ne = [t.shape[1], t.shape[0]]
        if quantize && t.shape[1] % 32 == 0 { return (name, .q8_0, ne, Q8_0.quantize(t.floats())) }
        switch t.dtype {
        case .f32: return (name, .f32, ne, t.bytes.array)
        case .f16: return (name, .f16, ne, t.bytes.array)
        case .bf16: return (name, .bf16, ne, t.bytes.array)
        case .f64: return (name, .f32, ne, ElementConversion.bytes(from: t.doubles(), as: .f32))
        }
    }
}

extension ByteWriter {
    mutating func writeGGUFString(_ s: String) {
        let b = Array(s.utf8)
        write(UInt64(b.count))
        write(b)
    }
}

extension OutputKind {
    /// A GGUF LoRA adapter (`general.type` = `adapter`): `--force` never replaces a GGUF model.
    public static let ggufAdapter = OutputKind(file: "a GGUF adapter") { path in
        (try? GGUFFile(path: path))?.value("general.type")?.stringValue == "adapter"
    }
}
