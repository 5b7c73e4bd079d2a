import TLoRAFormat
import TLoRAInterop
import TLoRAIO
import TLoRAModel

extension InspectReport {
    /// From a `.tlora` header only (no tensor data is read).
    init(tlora file: TLoRAFile) {
        let h = file.header
        self.init(path: file.path, format: "tlora", version: "\(h.majorVersion).\(h.minorVersion)")
        metadata = h.metadata.entries.map { ($0.key, $0.value) }
        fileBytes = h.fileLength
        func entries(_ names: [String]) -> [TensorEntry] { names.compactMap { h.entry($0) } }
        func codecs(_ es: [TensorEntry]) -> [String] {
            var seen: [String] = []
            for e in es where !seen.contains(e.codec.rawValue) { seen.append(e.codec.rawValue) }
            return seen
        }
        for g in h.tuckerGroups {
            let es = entries(g.tensorNames)
            let members = h.modules.filter { if case .tuckerSlice(let name, _) = $0.update { return name == g.name }; return false }.count
            groups.append(Group(name: g.name, modes: g.modes.map { "\($0.role.rawValue):\($0.name)" },
                                dimensions: es.dropFirst().map { $0.shape[0] }, ranks: es.first?.shape ?? [], members: members,
                                parameters: es.reduce(0) { $0 + $1.elementCount }, storedBytes: es.reduce(0) { $0 + $1.length },
                                codecs: codecs(es), maxRelativeError: g.conversion?.maxRelativeError, relativeError: g.conversion?.relativeError))
        }
        for m in h.modules {
            let es = entries(m.tensorNames)
            var ranks: [Int] = []
            var detail: String? = nil
            switch m.update {
            case .lowRank(let a, _): ranks = [h.entry(a)?.shape[0] ?? 0]
            case .tensorTrain(let cores, let rowOrder, let columnOrder):
                let shapes = cores.compactMap { h.entry($0)?.shape }
                ranks = shapes.dropLast().map { $0[3] }
                var text = "modes " + shapes.map { $0[1] > 1 && $0[2] > 1 ? "\($0[1])x\($0[2])" : ($0[1] > 1 ? "r\($0[1])" : "c\($0[2])") }.joined(separator: ",")
                if rowOrder != .forward { text += "; rows \(rowOrder.rawValue)" }
                if columnOrder != .forward { text += "; columns \(columnOrder.rawValue)" }
                detail = text
            case .jointTrain(let cores, _, let rank):
                let shapes = cores.compactMap { h.entry($0)?.shape }
                ranks = shapes.dropLast().map { $0[3] }
                detail = "generates A, B of rank \(rank); modes " + shapes.map { "\($0[1])x\($0[2])" }.joined(separator: ",")
            case .tuckerSlice(let g, let index): detail = "\(g)\(index)"
            default:
                if let s = h.updateShape(m).structuredSummary { (ranks, detail) = s }
            }
            var module = Module(name: m.name, update: m.update.kind.rawValue, shape: [m.outFeatures, m.inFeatures], ranks: ranks,
                                parameters: es.reduce(0) { $0 + $1.elementCount }, storedBytes: es.reduce(0) { $0 + $1.length },
                                codecs: codecs(es), dtype: es.first.map { FormatVocabulary.name(of: $0.dtype) } ?? "-", scale: m.scale, dora: m.doraMagnitude != nil,
                                maxRelativeError: m.conversion?.maxRelativeError, relativeError: m.conversion?.relativeError, detail: detail)
            module.describeExtras(kernel: m.kernel, doraAxis: m.doraAxis, bias: m.biasDelta != nil)
            modules.append(module)
        }
        for p in h.projections {
            for (t, role) in [(p.a, "A"), (p.b, "B")] {
                if let e = h.entry(t) {
                    tensors.append(Tensor(name: "\(p.name).\(role)", dtype: FormatVocabulary.name(of: e.dtype), shape: e.shape, storedBytes: e.length,
                                          codec: e.codec.rawValue, location: "shared projection"))
                }
            }
        }
        if let bank = h.bank { self.bank = BankInfo(bank, header: h) }
        for r in h.replaced {
            if let e = h.entry(r.tensor) {
                tensors.append(Tensor(name: r.target, dtype: FormatVocabulary.name(of: e.dtype), shape: e.shape, storedBytes: e.length, codec: e.codec.rawValue, location: "replaces base tensor"))
            }
        }
    }

    /// From a safetensors file or checkpoint directory: every tensor, header only.
    init(checkpoint: Checkpoint, format: String) {
        self.init(path: checkpoint.path, format: format, version: nil)
        if let first = checkpoint.shards.first, checkpoint.shards.count == 1 { metadata = first.metadata.map { ($0.key, $0.value) } }
        for (i, shard) in checkpoint.shards.enumerated() {
            fileBytes += shard.dataStart + (shard.entries.last?.dataRange.upperBound ?? 0)
            for e in shard.entries {
                tensors.append(Tensor(name: e.name, dtype: e.dtype.rawValue, shape: e.shape, storedBytes: e.dataRange.count, codec: nil,
                                      location: checkpoint.shards.count > 1 ? checkpoint.shardNames[i] : nil))
            }
        }
        if checkpoint.shards.count > 1 { notes.append("\(checkpoint.shards.count) shards listed in \(Checkpoint.indexName)") }
    }
}

extension InspectReport {
    /// From an adapter read from another tool's files (sizes are the stored, uncompressed bytes).
    init(adapter: Adapter, path: String, format: String, fileBytes: Int) {
        self.init(path: path, format: format, version: nil)
        metadata = adapter.metadata.entries.filter { !$0.key.hasSuffix("adapter_config") }.map { ($0.key, $0.value) }
        self.fileBytes = fileBytes
        for m in adapter.modules {
            let tensors = m.update.tensors + [m.doraMagnitude, m.biasDelta].compactMap { $0 }
            var ranks: [Int] = []
            var detail: String? = nil
            switch m.update {
            case .lowRank(let a, _): ranks = [a.shape[0]]
            case .tensorTrain(let tt):
                ranks = Array(tt.ranks.dropFirst().dropLast())
                if !tt.hasDefaultOrder { detail = "rows \(tt.rowOrder.rawValue), columns \(tt.columnOrder.rawValue)" }
            case .tuckerSlice(let g, let index): detail = "\(g)\(index)"
            case .dense: break
            case .jointTrain(let j):
                ranks = Array(j.ranks.dropFirst().dropLast())
                detail = "generates A, B of rank \(j.rank); modes " + zip(j.latentModes, j.generatedModes).map { "\($0)x\($1)" }.joined(separator: ",")
            default:
                if let s = m.update.shape.structuredSummary { (ranks, detail) = s }
            }
            var module = Module(name: m.name, update: m.update.kind.rawValue, shape: [m.outFeatures, m.inFeatures], ranks: ranks,
                                parameters: tensors.reduce(0) { $0 + $1.elementCount }, storedBytes: tensors.reduce(0) { $0 + $1.bytes.count },
                                codecs: [], dtype: tensors.first.map { FormatVocabulary.name(of: $0.dtype) } ?? "-", scale: m.scale, dora: m.doraMagnitude != nil,
                                maxRelativeError: m.conversion?.maxRelativeError, relativeError: m.conversion?.relativeError, detail: detail)
            module.describeExtras(kernel: m.kernel, doraAxis: m.doraAxis, bias: m.biasDelta != nil)
            modules.append(module)
        }
        for p in adapter.projections {
            for (t, role) in [(p.a, "A"), (p.b, "B")] {
                tensors.append(Tensor(name: "\(p.name).\(role)", dtype: FormatVocabulary.name(of: t.dtype), shape: t.shape, storedBytes: t.bytes.count,
                                      codec: nil, location: "shared projection"))
            }
        }
        for g in adapter.tuckerGroups {
            let ts = [g.core] + g.factors
            groups.append(Group(name: g.name, modes: g.modes.map { "\($0.role.rawValue):\($0.name)" }, dimensions: g.dimensions, ranks: g.ranks,
                                members: adapter.modules.filter { if case .tuckerSlice(let n, _) = $0.update { return n == g.name }; return false }.count,
                                parameters: g.parameterCount, storedBytes: ts.reduce(0) { $0 + $1.bytes.count }, codecs: [],
                                maxRelativeError: g.conversion?.maxRelativeError, relativeError: g.conversion?.relativeError))
        }
        for r in adapter.replacedTensors {
            tensors.append(Tensor(name: r.target, dtype: FormatVocabulary.name(of: r.value.dtype), shape: r.value.shape, storedBytes: r.value.bytes.count,
                                  codec: nil, location: "replaces base tensor"))
        }
    }
}

extension InspectReport {
    /// A GGUF adapter's modules as the file stores them: the ggml type of its factors (`q8_0`, as
    /// gguf-dump shows) and their bytes, not the dequantized values tlora reads them into.
    mutating func useStorage(of file: GGUFFile) {
        guard let arch = file.value("general.architecture")?.stringValue, let table = ArchitectureTable.gguf(arch) else { return }
        var stored: [String: (bytes: Int, types: [String])] = [:]
        for t in file.tensors {
            let stem = t.name.hasSuffix(".lora_a") || t.name.hasSuffix(".lora_b") ? String(t.name.dropLast(7)) : t.name
            guard let module = table.hfModule(forGGUF: stem) else { continue }
            let type = t.type.description.lowercased()
            stored[module, default: (0, [])].bytes += t.byteCount
            if !(stored[module]?.types.contains(type) ?? false) { stored[module]?.types.append(type) }
        }
        for i in modules.indices {
            guard let s = stored[modules[i].name] else { continue }
            modules[i].storedBytes = s.bytes
            modules[i].dtype = s.types.joined(separator: "/")
        }
    }
}
