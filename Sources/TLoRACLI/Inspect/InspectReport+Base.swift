import TLoRAInterop
import TLoRAIO

extension InspectReport {
    /// A diffusers pipeline directory or a single-file checkpoint: its components, then every tensor
    /// (qualified names), headers only.
    init(base: ModelBase) {
        self.init(path: base.path, format: base.layout.rawValue, version: nil)
        func dtypes(_ entries: [SafetensorsEntry]) -> [String] {
            var seen: [String] = []
            for e in entries where !seen.contains(e.dtype.rawValue) { seen.append(e.dtype.rawValue) }
            return seen
        }
        switch base.layout {
        case .pipeline:
            for c in base.components {
                let entries = c.checkpoint.shards.flatMap(\.entries)
                let variants = c.variants.compactMap { $0 }
                var files = c.weightSets.flatMap(\.shardNames)
                if let index = c.checkpoint.indexFileName { files.insert(index, at: 0) }
                components.append(Component(name: c.name, kind: [c.library, c.className].compactMap { $0 }.joined(separator: "/"), files: files,
                                            tensors: entries.count, parameters: entries.reduce(0) { $0 + $1.elementCount },
                                            bytes: c.weightSets.reduce(0) { $0 + $1.shards.reduce(0) { $0 + $1.fileBytes.count } }, dtypes: dtypes(entries)))
                if !variants.isEmpty { notes.append("\(c.name): \(c.weightSets.count) weight sets (variants \(variants.joined(separator: ", "))); a merge rewrites each") }
                fileBytes += components.last?.bytes ?? 0
            }
            for name in base.unreadableComponents {
                notes.append("\(name): only .bin/.ckpt weights, which tlora does not read (a merge copies the folder)")
            }
        case .singleFile, .checkpoint:
            let checkpoint = base.components[0].checkpoint
            if let shard = checkpoint.shards.first { metadata = shard.metadata.map { ($0.key, $0.value) } }
            var groups: [(prefix: String, role: String, entries: [SafetensorsEntry])] = []
            var other: [SafetensorsEntry] = []
            for e in checkpoint.shards.flatMap(\.entries) {
                if let (prefix, role, _) = SingleFileNames.split(e.name) {
                    if let i = groups.firstIndex(where: { $0.prefix == prefix }) { groups[i].entries.append(e) } else { groups.append((prefix, role, [e])) }
                } else {
                    other.append(e)
                }
            }
            for g in groups {
                components.append(Component(name: g.prefix.hasSuffix(".") ? String(g.prefix.dropLast()) : g.prefix, kind: g.role, files: checkpoint.shardNames,
                                            tensors: g.entries.count, parameters: g.entries.reduce(0) { $0 + $1.elementCount },
                                            bytes: g.entries.reduce(0) { $0 + $1.dataRange.count }, dtypes: dtypes(g.entries)))
            }
            if !other.isEmpty {
                components.append(Component(name: "(other)", kind: "", files: checkpoint.shardNames, tensors: other.count,
                                            parameters: other.reduce(0) { $0 + $1.elementCount }, bytes: other.reduce(0) { $0 + $1.dataRange.count },
                                            dtypes: dtypes(other)))
            }
            fileBytes = checkpoint.shards.reduce(0) { $0 + $1.fileBytes.count }
        }
        for (name, e) in base.tensors {
            let location = base.layout == .pipeline ? base.locate(name).map { base.components[$0.component].name } : nil
            tensors.append(Tensor(name: name, dtype: e.dtype.rawValue, shape: e.shape, storedBytes: e.dataRange.count, codec: nil, location: location))
        }
    }
}
