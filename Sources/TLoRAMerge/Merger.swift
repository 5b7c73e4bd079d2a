import TLoRAConvert
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// Merges an adapter into a base checkpoint and writes a complete checkpoint directory.
///
/// Streams tensor by tensor: each base tensor is read from its memory mapping, updated in f32 when
/// the adapter touches it (`W + scale · ΔW`, DoRA's row renormalization), rounded once to the output
/// dtype (nearest even), written, and its pages dropped, so resident memory stays near the largest
/// tensor. The output has the base's shard names, tensor order, header metadata, dtypes and index;
/// the base's other files (config, tokenizer, …) are copied. The directory appears complete or not
/// at all.
public enum Merger {
    public static func merge(adapter: Adapter, adapterPath: String, base: Checkpoint, output: String, options: MergeOptions = MergeOptions()) throws -> MergeReport {
        guard pathKind(base.path) == .directory else {
            throw ConvertError("\(base.path): the base must be a checkpoint directory (config.json and safetensors shards)")
        }
        try outputPlan(adapterPath: adapterPath, base: base, output: output, options: options).check()
        let plan = try MergePlan(adapter: adapter, base: base, adapterPath: adapterPath)
        let totalBytes = base.shards.reduce(0) { $0 + $1.fileBytes.count }
        let directory = try AtomicDirectoryWriter(destination: output, overwrite: options.overwrite)
        var report = MergeReport(updatedTensors: 0, replacedTensors: 0, copiedTensors: 0, shards: base.shards.count, bytesWritten: 0, copiedFiles: [])
        var done = 0
        var dataSizes: [Int] = []
        let pool = BufferPool()
        for (s, shard) in base.shards.enumerated() {
            let out = try AtomicFileWriter(destination: directory.path(for: base.shardNames[s]), overwrite: false)
            let entries = shard.entries  // offset order
            let outDType: @Sendable (SafetensorsEntry) -> SafetensorsDType = { e in
                if let d = options.dtype, e.dtype.floatType != nil { return SafetensorsDType(d) }
                return e.dtype
            }
            if options.dtype == nil {
                // Same layout: the header is copied byte for byte.
                try out.write(UnsafeRawBufferPointer(rebasing: shard.fileBytes[0..<shard.dataStart]))
            } else {
                let items = entries.map { SafetensorsWriter.Item(name: $0.name, dtype: outDType($0), shape: $0.shape, byteCount: $0.elementCount * outDType($0).byteWidth) }
                try out.write(SafetensorsWriter.header(items: items, metadata: shard.metadata.map { ($0.key, $0.value) }))
            }
            let dataStart = out.bytesWritten
            let actions = plan.actions
            let scale = options.scale
            let source = ReadOnlyDescriptor(path: shard.path)
            // Arithmetic for tensor i+1 runs while tensor i is written.
            try OrderedPipeline.run(count: entries.count, produce: { i -> MergedBytes in
                let e = entries[i]
                let target = outDType(e)
                switch actions[e.name] {
                case .update(let module, let replacement):
                    let out = pool.acquire(e.elementCount * target.byteWidth)
                    try updateTensor(e, shard: shard, module: module, replacement: replacement, adapter: adapter, scale: scale,
                                     as: target, into: UnsafeMutableRawBufferPointer(rebasing: out[0..<(e.elementCount * target.byteWidth)]))
                    return .computed(out, e.elementCount * target.byteWidth, .updated)
                case .bias(let module):
                    // Safe: MergePlan admitted only floating bias tensors.
                    var values = ElementConversion.floats(from: shard.bytes(of: e), dtype: e.dtype.floatType!)
                    try BiasUpdate.apply(module, to: &values, scale: scale)
                    let bytes = ElementConversion.bytes(from: values, as: target.floatType!)
                    let out = pool.acquire(bytes.count)
                    bytes.withUnsafeBytes { out.copyMemory(from: $0) }
                    return .computed(out, bytes.count, .updated)
                case .replace(let value):
                    let bytes = convert(value, to: target)
                    let out = pool.acquire(bytes.count)
                    bytes.withUnsafeBytes { out.copyMemory(from: $0) }
                    return .computed(out, bytes.count, .replaced)
                case nil:
                    if target == e.dtype { return .copy }
                    // Safe: only floating dtypes are converted.
                    let bytes = convert(StoredTensor(dtype: e.dtype.floatType!, shape: e.shape, bytes: Array(shard.bytes(of: e))), to: target)
                    let out = pool.acquire(bytes.count)
                    bytes.withUnsafeBytes { out.copyMemory(from: $0) }
                    return .computed(out, bytes.count, .copied)
                }
            }, consume: { i, item in
                let e = entries[i]
                switch item {
                case .copy:
                    if let fd = source?.rawValue {
                        try out.copy(from: fd, offset: shard.dataStart + e.dataRange.lowerBound, count: e.dataRange.count, fallback: shard.bytes(of: e))
                    } else {
                        try out.write(shard.bytes(of: e))
                    }
                    report.copiedTensors += 1
                case .computed(let buffer, let count, let kind):
                    defer { pool.release(buffer) }
                    try out.write(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                    switch kind {
                    case .updated: report.updatedTensors += 1
                    case .replaced: report.replacedTensors += 1
                    case .copied: report.copiedTensors += 1
                    }
                }
                shard.release(e)
                done += e.dataRange.count
                options.progress?(done, totalBytes)
            })
            dataSizes.append(out.bytesWritten - dataStart)
            report.bytesWritten += out.bytesWritten
            try out.commit()
        }
        report.copiedFiles = try copyOtherFiles(from: base, into: directory, dataSizes: dataSizes, dtype: options.dtype)
        report.changes = Self.changes(plan, base: base)
        try directory.commit()
        return report
    }

    /// What `merge` would do, with every check it makes before writing (the base, the adapter's
    /// modules against it, non-finite values, the output path and disk space), and nothing written.
    public static func preview(adapter: Adapter, adapterPath: String, base: Checkpoint, output: String, options: MergeOptions = MergeOptions()) throws -> MergeReport {
        guard pathKind(base.path) == .directory else {
            throw ConvertError("\(base.path): the base must be a checkpoint directory (config.json and safetensors shards)")
        }
        let outputPlan = outputPlan(adapterPath: adapterPath, base: base, output: output, options: options)
        try outputPlan.check(writing: false)
        let plan = try MergePlan(adapter: adapter, base: base, adapterPath: adapterPath)
        let changes = Self.changes(plan, base: base)
        let updated = changes.filter { $0.action == "updated" }.count
        let total = base.shards.reduce(0) { $0 + $1.entries.count }
        return MergeReport(updatedTensors: updated, replacedTensors: changes.count - updated, copiedTensors: total - changes.count,
                           shards: base.shards.count, bytesWritten: outputPlan.expectedBytes ?? 0,
                           copiedFiles: try otherFiles(of: base), changes: changes)
    }

    /// The base tensors `plan` changes, in the checkpoint's order.
    static func changes(_ plan: MergePlan, base: Checkpoint) -> [(tensor: String, action: String, module: String?)] {
        base.shards.flatMap(\.entries).compactMap { e in
            switch plan.actions[e.name] {
            case .update(let m, _), .bias(let m): return (e.name, "updated", m.name)
            case .replace: return (e.name, "replaced", nil)
            case nil: return nil
            }
        }
    }

    /// What the pipeline hands from arithmetic to the writer.
    enum MergedBytes: @unchecked Sendable {  // a buffer moves between exactly two threads, in order
        enum Kind { case updated, replaced, copied }
        /// Unchanged: copied from the base file.
        case copy
        case computed(UnsafeMutableRawBufferPointer, Int, Kind)
    }

    /// Writes the merged tensor in dtype `target` into `output`: block by block for low-rank updates
    /// (`FusedUpdate`), through one f32 copy of the tensor otherwise.
    static func updateTensor(_ e: SafetensorsEntry, shard: SafetensorsFile, module: AdapterModule, replacement: StoredTensor?,
                             adapter: Adapter, scale: Double, as target: SafetensorsDType, into output: UnsafeMutableRawBufferPointer) throws {
        // Safe: MergePlan admitted only floating base tensors and floating output dtypes.
        let dtype = e.dtype.floatType!, outType = target.floatType!
        if let rows = try FusedUpdate.rows(for: module, in: adapter) {
            if let replacement {
                replacement.bytes.withUnsafeBytes { src in
                    FusedUpdate.apply(module, rows: rows, scale: scale, source: src, sourceType: replacement.dtype, output: output, outputType: outType)
                }
            } else {
                FusedUpdate.apply(module, rows: rows, scale: scale, source: shard.bytes(of: e), sourceType: dtype, output: output, outputType: outType)
            }
            return
        }
        var w = replacement?.floats() ?? ElementConversion.floats(from: shard.bytes(of: e), dtype: dtype)
        try WeightUpdate.apply(module, of: adapter, to: &w, scale: scale)
        w.withUnsafeBufferPointer { ElementConversion.encode($0, as: outType, into: output) }
    }

    static func convert(_ t: StoredTensor, to target: SafetensorsDType) -> [UInt8] {
        if let f = target.floatType, f == t.dtype { return t.bytes.array }
        // Replacements and copies are floating here (MergePlan/caller checked).
        return ElementConversion.bytes(from: t.floats(), as: target.floatType!)
    }

    /// The merge's output, to check before any work: never the base or the adapter, nor inside or
    /// around them; room on the disk for every shard in the output dtype.
    public static func outputPlan(adapterPath: String, base: Checkpoint, output: String, options: MergeOptions) -> OutputPlan {
        var bytes = 0
        for shard in base.shards {
            bytes += shard.dataStart
            for e in shard.entries {
                let width = options.dtype.map { d in e.dtype.floatType != nil ? SafetensorsDType(d).byteWidth : e.dtype.byteWidth } ?? e.dtype.byteWidth
                bytes += e.elementCount * width
            }
        }
        return OutputPlan(path: output, kind: .directory, replace: options.overwrite, inputs: [adapterPath, base.path], expectedBytes: bytes)
    }

    /// The base's files a merge copies: everything but hidden files, the shards and other weight files.
    static func otherFiles(of base: Checkpoint) throws -> [String] {
        let weightSuffixes = [".safetensors", ".bin", ".pt", ".pth", ".gguf", ".msgpack", ".h5", ".ckpt"]
        return try directoryEntries(base.path).filter { name in
            if name.hasPrefix(".") || base.shardNames.contains(name) { return false }
            return name == Checkpoint.indexName || !weightSuffixes.contains(where: { name.hasSuffix($0) })
        }
    }

    /// Copies the base's non-weight files; rewrites the index (and config dtype) when sizes changed.
    static func copyOtherFiles(from base: Checkpoint, into directory: AtomicDirectoryWriter, dataSizes: [Int], dtype: DType?) throws -> [String] {
        var copied: [String] = []
        for name in try otherFiles(of: base) {
            let source = joinPath(base.path, name)
            if name == Checkpoint.indexName {
                var index = (try JSONParser.parse(try readWholeFile(path: source))).objectValue ?? JSONObject()
                if dtype != nil {
                    var metadata = index["metadata"]?.objectValue ?? JSONObject()
                    metadata["total_size"] = JSONValue(dataSizes.reduce(0, +))
                    index["metadata"] = .object(metadata)
                    try writeFile(JSONWriter.bytes(.object(index), indent: 2) + [0x0A], to: directory.path(for: name))
                } else {
                    try copyFile(source, to: directory.path(for: name))
                }
                copied.append(name)
                continue
            }
            if name == "config.json", let dtype {
                var config = (try JSONParser.parse(try readWholeFile(path: source))).objectValue ?? JSONObject()
                let torchName = ["f32": "float32", "f64": "float64", "f16": "float16", "bf16": "bfloat16"][dtype.rawValue] ?? dtype.rawValue
                for key in ["torch_dtype", "dtype"] where config.contains(key) { config[key] = JSONValue(torchName) }
                try writeFile(JSONWriter.bytes(.object(config), indent: 2) + [0x0A], to: directory.path(for: name))
                copied.append(name)
                continue
            }
            try copyTree(source, to: directory.path(for: name))
            copied.append(name)
        }
        return copied
    }

    static func writeFile(_ bytes: [UInt8], to path: String) throws {
        let f = try AtomicFileWriter(destination: path, overwrite: false)
        try f.write(bytes)
        try f.commit()
    }
}
