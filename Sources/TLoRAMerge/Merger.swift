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
        try merge([MergeInput(adapter: adapter, path: adapterPath, rows: rows)], base: base, output: output, options: options)
    }

    /// Merges several adapters in one pass: each base tensor is read once, decoded to f32, gets every
    /// adapter's change in the order given (`weight · options.scale · ΔW`, DoRA renormalizing what the
    /// adapters before it made, a replacement resetting the tensor), and is rounded once to the
    /// output dtype. On an f32 base this is bit for bit merging the adapters one after the other;
    /// on a 16-bit base it rounds once instead of after every adapter. Every adapter is checked
    /// against the base (`MergePlan`) and the output against all of them before a byte is written.
    public static func merge(_ inputs: [MergeInput], base: ModelBase, output: String, options: MergeOptions = MergeOptions()) throws -> MergeReport {
        try outputPlan(adapterPaths: inputs.map(\.path), base: base, output: output, options: options).check()
        let layers = try plans(inputs, base: base, options: options)
        let writer = ShardWriter(layers: layers, options: options, totalBytes: base.weightBytes)
        let touched = Set(layers.flatMap(\.plan.touchedComponents))
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
            let out = try AtomicFileWriter(destination: output, overwrite: options.overwrite, kind: SafetensorsWriter.outputKind, unbuffered: true)
            try writer.write(shard, component: "", into: out, marker: true)
            writer.report.shards = 1
            try out.commit()
        case .pipeline:
            let directory = try AtomicDirectoryWriter(destination: output, overwrite: options.overwrite)
            for name in try directoryEntries(base.path).sorted() where !name.hasPrefix(".") {
                let source = joinPath(base.path, name)
                guard let c = base.component(named: name), options.dtype != nil || touched.contains(name) else {
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
        writer.report.changes = Self.changes(layers, base: base)
        return writer.report
    }

    /// Every input's plan against the base, built (and so checked) before anything is written.
    static func plans(_ inputs: [MergeInput], base: ModelBase, options: MergeOptions) throws -> [ShardWriter.Layer] {
        guard !inputs.isEmpty else { throw ConvertError(.invalidOptions, "merge needs at least one adapter") }
        return try inputs.map { input in
            let scale = input.weight * options.scale
            guard scale.isFinite else { throw ConvertError(.nonFiniteValues, "\(input.path): weight \(input.weight) × scale \(options.scale) is not finite") }
            // IA³ multiplies the weight: there is no fraction of it to merge.
            if scale != 1, let m = input.adapter.modules.first(where: { if case .featureScale = $0.update { return true }; return false }) {
                throw ConvertError(.notSupported, "\(input.path): module \(m.name) is an IA³ rescaling, which cannot be merged with weight \(scale)")
            }
            let plan = try MergePlan(adapter: input.adapter, base: base, adapterPath: input.path, rows: input.rows)
            return ShardWriter.Layer(adapter: input.adapter, plan: plan, scale: scale)
        }
    }

    /// What `merge` would do, with every check it makes before writing (the base, the adapter's
    /// modules against it, non-finite values, the output path and disk space), and nothing written.
    public static func preview(adapter: Adapter, adapterPath: String, base: Checkpoint, output: String, options: MergeOptions = MergeOptions()) throws -> MergeReport {
        try preview(adapter: adapter, adapterPath: adapterPath, base: ModelBase(checkpoint: base), output: output, options: options)
    }

    public static func preview(adapter: Adapter, adapterPath: String, base: ModelBase, rows: [String: Range<Int>] = [:], output: String,
                               options: MergeOptions = MergeOptions()) throws -> MergeReport {
        try preview([MergeInput(adapter: adapter, path: adapterPath, rows: rows)], base: base, output: output, options: options)
    }

    /// What `merge(_:base:output:options:)` would do, after every check it makes; nothing written.
    public static func preview(_ inputs: [MergeInput], base: ModelBase, output: String, options: MergeOptions = MergeOptions()) throws -> MergeReport {
        let outputPlan = outputPlan(adapterPaths: inputs.map(\.path), base: base, output: output, options: options)
        try outputPlan.check(writing: false)
        let layers = try plans(inputs, base: base, options: options)
        let touched = Set(layers.flatMap(\.plan.touchedComponents))
        let changes = Self.changes(layers, base: base)
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
                if let c = base.component(named: name), options.dtype != nil || touched.contains(name) {
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

    /// The base tensors the plans change (qualified names), in the base's order; `updated` by a
    /// module, or by several on rows of a fused weight (their names joined by `+`), or `replaced`
    /// (by the last adapter that touches it). With several adapters each module name is prefixed
    /// with the positions of the adapters whose module of that name changes it (`1,3:`).
    static func changes(_ layers: [ShardWriter.Layer], base: ModelBase) -> [(tensor: String, action: String, module: String?)] {
        base.tensors.compactMap { (name, _) in
            var modules: [(positions: [Int], name: String)] = []
            var last: MergePlan.Action? = nil
            for (i, layer) in layers.enumerated() {
                guard let action = layer.plan.actions[name] else { continue }
                last = action
                let names: [String]
                switch action {
                case .update(let m, _), .bias(let m): names = [m.name]
                case .updateRows(let modules): names = modules.map(\.module.name)
                case .replace: names = []
                }
                for n in names {
                    if let k = modules.firstIndex(where: { $0.name == n }) { modules[k].positions.append(i + 1) } else { modules.append(([i + 1], n)) }
                }
            }
            guard let last else { return nil }
            let label = modules.map { layers.count > 1 ? "\($0.positions.map(String.init).joined(separator: ",")):\($0.name)" : $0.name }
                .joined(separator: "+")
            if case .replace = last { return (name, "replaced", label.isEmpty || layers.count == 1 ? nil : label) }
            return (name, "updated", label)
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
        outputPlan(adapterPaths: [adapterPath], base: base, output: output, options: options)
    }

    /// The same for several adapters: the output may be none of them either.
    public static func outputPlan(adapterPaths: [String], base: ModelBase, output: String, options: MergeOptions) -> OutputPlan {
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
                          inputs: adapterPaths + [base.path], expectedBytes: bytes)
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
