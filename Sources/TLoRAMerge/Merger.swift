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
        try merge(adapter: adapter, adapterPath: adapterPath, base: ModelBase(checkpoint: base), output: output, options: options)
    }

    /// Merges into any base, writing the base's own layout: a checkpoint directory as a directory with
    /// the same shards and files, a diffusers pipeline as a pipeline directory (the components the
    /// adapter changes rewritten, every other folder and file copied), a single file as a single file.
    ///
    /// - Parameter rows: modules that update rows of a fused weight (`DiffusionBinding`), by name.
    public static func merge(adapter: Adapter, adapterPath: String, base: ModelBase, rows: [String: Range<Int>] = [:], output: String,
                             options: MergeOptions = MergeOptions()) throws -> MergeReport {
        try outputPlan(adapterPath: adapterPath, base: base, output: output, options: options).check()
        let plan = try MergePlan(adapter: adapter, base: base, adapterPath: adapterPath, rows: rows)
        let writer = ShardWriter(adapter: adapter, plan: plan, options: options, totalBytes: base.weightBytes)
        switch base.layout {
        case .checkpoint where pathKind(base.path) == .directory:
            let checkpoint = base.components[0].checkpoint
            let directory = try AtomicDirectoryWriter(destination: output, overwrite: options.overwrite)
            let sizes = try writer.write(checkpoint, component: "") { directory.path(for: $0) }
            writer.report.copiedFiles = try copyOtherFiles(in: base.path, weightSets: [checkpoint], dataSizes: [sizes], dtype: options.dtype) {
                directory.path(for: $0)
            }
            try directory.commit()
        case .checkpoint, .singleFile:
            let shard = base.components[0].checkpoint.shards[0]
            let out = try AtomicFileWriter(destination: output, overwrite: options.overwrite, kind: SafetensorsWriter.outputKind)
            try writer.write(shard, component: "", into: out, marker: true)
            writer.report.shards = 1
            try out.commit()
        case .pipeline:
            let directory = try AtomicDirectoryWriter(destination: output, overwrite: options.overwrite)
            for name in try directoryEntries(base.path).sorted() where !name.hasPrefix(".") {
                let source = joinPath(base.path, name)
                guard let c = base.component(named: name), options.dtype != nil || plan.touchedComponents.contains(name) else {
                    try copyTree(source, to: directory.path(for: name))
                    writer.report.copiedFiles.append(name)
                    continue
                }
                try createDirectory(directory.path(for: name))
                var sizes: [[Int]] = []
                for set in c.weightSets {
                    sizes.append(try writer.write(set, component: name) { directory.path(for: name + "/" + $0) })
                }
                let copied = try copyOtherFiles(in: source, weightSets: c.weightSets, dataSizes: sizes, dtype: options.dtype) {
                    directory.path(for: name + "/" + $0)
                }
                writer.report.copiedFiles += copied.map { name + "/" + $0 }
                writer.report.rewrittenComponents.append(name)
            }
            try directory.commit()
        }
        writer.report.changes = Self.changes(plan, base: base)
        return writer.report
    }

    /// What `merge` would do, with every check it makes before writing (the base, the adapter's
    /// modules against it, non-finite values, the output path and disk space), and nothing written.
    public static func preview(adapter: Adapter, adapterPath: String, base: Checkpoint, output: String, options: MergeOptions = MergeOptions()) throws -> MergeReport {
        try preview(adapter: adapter, adapterPath: adapterPath, base: ModelBase(checkpoint: base), output: output, options: options)
    }

    public static func preview(adapter: Adapter, adapterPath: String, base: ModelBase, rows: [String: Range<Int>] = [:], output: String,
                               options: MergeOptions = MergeOptions()) throws -> MergeReport {
        let outputPlan = outputPlan(adapterPath: adapterPath, base: base, output: output, options: options)
        try outputPlan.check(writing: false)
        let plan = try MergePlan(adapter: adapter, base: base, adapterPath: adapterPath, rows: rows)
        let changes = Self.changes(plan, base: base)
        let updated = changes.filter { $0.action == "updated" }.count
        let total = base.components.reduce(0) { $0 + $1.weightSets.reduce(0) { $0 + $1.shardOfTensor.count } }
        var report = MergeReport(updatedTensors: updated, replacedTensors: changes.count - updated, copiedTensors: total - changes.count,
                                 shards: 0, bytesWritten: outputPlan.expectedBytes ?? 0, copiedFiles: [], changes: changes)
        switch base.layout {
        case .checkpoint where pathKind(base.path) == .directory:
            report.shards = base.components[0].checkpoint.shards.count
            report.copiedFiles = try otherFiles(in: base.path, weightSets: [base.components[0].checkpoint])
        case .checkpoint, .singleFile:
            report.shards = 1
        case .pipeline:
            for name in try directoryEntries(base.path).sorted() where !name.hasPrefix(".") {
                if let c = base.component(named: name), options.dtype != nil || plan.touchedComponents.contains(name) {
                    report.shards += c.weightSets.reduce(0) { $0 + $1.shards.count }
                    report.rewrittenComponents.append(name)
                    report.copiedFiles += try otherFiles(in: joinPath(base.path, name), weightSets: c.weightSets).map { name + "/" + $0 }
                } else {
                    report.copiedFiles.append(name)
                }
            }
        }
        return report
    }

    /// The base tensors `plan` changes (qualified names), in the base's order; `updated` by a module,
    /// or by several on rows of a fused weight (their names joined by `+`), or `replaced`.
    static func changes(_ plan: MergePlan, base: ModelBase) -> [(tensor: String, action: String, module: String?)] {
        base.tensors.compactMap { (name, _) in
            switch plan.actions[name] {
            case .update(let m, _), .bias(let m): return (name, "updated", m.name)
            case .updateRows(let modules): return (name, "updated", modules.map(\.module.name).joined(separator: "+"))
            case .replace: return (name, "replaced", nil)
            case nil: return nil
            }
        }
    }

    /// What the pipeline hands from arithmetic to the writer.
    enum MergedBytes: Sendable {
        enum Kind: Sendable { case updated, replaced, copied }
        /// Unchanged: copied from the base file.
        case copy
        /// Bytes the pool takes back when the item goes, written or not.
        case computed(PooledBuffer, Kind)
    }

    /// Writes the merged tensor in dtype `target` into `output`.
    static func updateTensor(_ e: SafetensorsEntry, shard: SafetensorsFile, module: AdapterModule, replacement: StoredTensor?,
                             adapter: Adapter, scale: Double, as target: SafetensorsDType, into output: UnsafeMutableRawBufferPointer) throws {
        // Safe: MergePlan admitted only floating base tensors and floating output dtypes.
        let dtype = e.dtype.floatType!, outType = target.floatType!
        if let replacement {
            try replacement.bytes.withUnsafeBytes { src in
                try updateBytes(module, source: src, sourceType: replacement.dtype, adapter: adapter, scale: scale, as: outType, into: output)
            }
        } else {
            try updateBytes(module, source: shard.bytes(of: e), sourceType: dtype, adapter: adapter, scale: scale, as: outType, into: output)
        }
    }

    /// `W + scale · ΔW` of one module from the weight's bytes: block by block from the update's factors
    /// (`FusedUpdate`), through one f32 copy of the weight otherwise.
    static func updateBytes(_ module: AdapterModule, source: UnsafeRawBufferPointer, sourceType: DType, adapter: Adapter, scale: Double,
                            as outType: DType, into output: UnsafeMutableRawBufferPointer) throws {
        if let rows = try FusedUpdate.rows(for: module, in: adapter) {
            FusedUpdate.apply(module, rows: rows, scale: scale, source: source, sourceType: sourceType, output: output, outputType: outType)
            return
        }
        var w = ElementConversion.floats(from: source, dtype: sourceType)
        try WeightUpdate.apply(module, of: adapter, to: &w, scale: scale)
        w.withUnsafeBufferPointer { ElementConversion.encode($0, as: outType, into: output) }
    }

    /// Elements from one dtype to another (a byte copy when they are the same).
    static func convertElements(_ source: UnsafeRawBufferPointer, from: DType, to: DType, into output: UnsafeMutableRawBufferPointer) {
        if from == to {
            output.copyMemory(from: source)
            return
        }
        let values = ElementConversion.floats(from: source, dtype: from)
        values.withUnsafeBufferPointer { ElementConversion.encode($0, as: to, into: output) }
    }

    static func convert(_ t: StoredTensor, to target: SafetensorsDType) -> [UInt8] {
        if let f = target.floatType, f == t.dtype { return t.bytes.array }
        // Replacements and copies are floating here (MergePlan/caller checked).
        return ElementConversion.bytes(from: t.floats(), as: target.floatType!)
    }

    /// The merge's output, to check before any work: never the base or the adapter, nor inside or
    /// around them; room on the disk for every weight file in the output dtype.
    public static func outputPlan(adapterPath: String, base: Checkpoint, output: String, options: MergeOptions) -> OutputPlan {
        outputPlan(adapterPath: adapterPath, base: ModelBase(checkpoint: base), output: output, options: options)
    }

    public static func outputPlan(adapterPath: String, base: ModelBase, output: String, options: MergeOptions) -> OutputPlan {
        var bytes = 0
        for c in base.components {
            for set in c.weightSets {
                for shard in set.shards {
                    bytes += shard.dataStart
                    for e in shard.entries {
                        let width = options.dtype.map { d in e.dtype.floatType != nil ? SafetensorsDType(d).byteWidth : e.dtype.byteWidth } ?? e.dtype.byteWidth
                        bytes += e.elementCount * width
                    }
                }
            }
        }
        let isFile = pathKind(base.path) == .file
        return OutputPlan(path: output, kind: isFile ? SafetensorsWriter.outputKind : .directory, replace: options.overwrite,
                          inputs: [adapterPath, base.path], expectedBytes: bytes)
    }

    /// The files a merge copies from a checkpoint directory (or a pipeline component's folder):
    /// everything but hidden files, the shards and other weight files; the indexes are rewritten copies.
    static func otherFiles(in directory: String, weightSets: [Checkpoint]) throws -> [String] {
        let weightSuffixes = [".safetensors", ".bin", ".pt", ".pth", ".gguf", ".msgpack", ".h5", ".ckpt"]
        let shardNames = Set(weightSets.flatMap(\.shardNames))
        let indexes = Set(weightSets.compactMap(\.indexFileName))
        return try directoryEntries(directory).sorted().filter { name in
            if name.hasPrefix(".") || shardNames.contains(name) { return false }
            return indexes.contains(name) || !weightSuffixes.contains(where: { name.hasSuffix($0) })
        }
    }

    /// Copies the non-weight files of a checkpoint directory (or a pipeline component's folder) to
    /// `path(name)`; rewrites each index's `total_size` (and `config.json`'s dtype) when `dtype` changes
    /// the sizes. Weight files are never copied: the merge wrote the safetensors ones, and stale
    /// `.bin`/`.ckpt` weights beside them would contradict the merged ones.
    static func copyOtherFiles(in sourceDirectory: String, weightSets: [Checkpoint], dataSizes: [[Int]], dtype: DType?,
                               path: (String) -> String) throws -> [String] {
        var copied: [String] = []
        for name in try otherFiles(in: sourceDirectory, weightSets: weightSets) {
            let source = joinPath(sourceDirectory, name)
            if let s = weightSets.firstIndex(where: { $0.indexFileName == name }) {
                var index = (try JSONParser.parse(try readWholeFile(path: source))).objectValue ?? JSONObject()
                if dtype != nil {
                    var metadata = index["metadata"]?.objectValue ?? JSONObject()
                    metadata["total_size"] = JSONValue(dataSizes[s].reduce(0, +))
                    index["metadata"] = .object(metadata)
                    try writeFile(JSONWriter.bytes(.object(index), indent: 2) + [0x0A], to: path(name))
                } else {
                    try copyFile(source, to: path(name))
                }
                copied.append(name)
                continue
            }
            if name == "config.json", let dtype {
                var config = (try JSONParser.parse(try readWholeFile(path: source))).objectValue ?? JSONObject()
                let torchName = ["f32": "float32", "f64": "float64", "f16": "float16", "bf16": "bfloat16"][dtype.rawValue] ?? dtype.rawValue
                for key in ["torch_dtype", "dtype"] where config.contains(key) { config[key] = JSONValue(torchName) }
                try writeFile(JSONWriter.bytes(.object(config), indent: 2) + [0x0A], to: path(name))
                copied.append(name)
                continue
            }
            try copyTree(source, to: path(name))
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
