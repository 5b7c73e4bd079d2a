import TLoRAConvert
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import TLoRANumerics

extension Merger {
    /// Writes merged shards: every tensor of a shard in file order, the updated ones computed one or
    /// two ahead of the writer (`OrderedPipeline`), the others copied inside the kernel; pages of the
    /// base are dropped after each tensor. Counts what it did in `report`.
    final class ShardWriter {
        /// One adapter of the merge, its plan against the base and the factor on its updates.
        struct Layer: Sendable {
            let adapter: Adapter
            let plan: MergePlan
            let scale: Double
        }

        /// What happens to one base tensor: the actions of the adapters that touch it, in order.
        typealias Steps = [(layer: Layer, action: MergePlan.Action)]

        let steps: [String: Steps]
        let options: MergeOptions
        let totalBytes: Int
        let pool = BufferPool()
        var done = 0
        var report = MergeReport(updatedTensors: 0, replacedTensors: 0, copiedTensors: 0, shards: 0, bytesWritten: 0, copiedFiles: [])

        init(layers: [Layer], options: MergeOptions, totalBytes: Int) {
            var steps: [String: Steps] = [:]
            for layer in layers {
                for (name, action) in layer.plan.actions { steps[name, default: []].append((layer, action)) }
            }
            self.steps = steps
            self.options = options
            self.totalBytes = totalBytes
        }

        /// Each shard of `checkpoint` into the file `path(shardName)`; returns each shard's data bytes.
        func write(_ checkpoint: Checkpoint, component: String, path: (String) -> String) throws -> [Int] {
            var sizes: [Int] = []
            for (s, shard) in checkpoint.shards.enumerated() {
                let out = try AtomicFileWriter(destination: path(checkpoint.shardNames[s]), overwrite: false, unbuffered: true)
                sizes.append(try write(shard, component: component, into: out, marker: false))
                report.shards += 1
                try out.commit()
            }
            return sizes
        }

        /// The output dtype of a base tensor.
        func outputType(_ e: SafetensorsEntry) -> SafetensorsDType { Self.outputType(e, dtype: options.dtype) }

        static func outputType(_ e: SafetensorsEntry, dtype: DType?) -> SafetensorsDType {
            if let d = dtype, e.dtype.floatType != nil { return SafetensorsDType(d) }
            return e.dtype
        }

        /// One shard into `out` (which the caller commits); returns the data bytes written. With
        /// `marker`, the header's metadata says tlora wrote the file (so `--force` may replace it).
        @discardableResult
        func write(_ shard: SafetensorsFile, component: String, into out: AtomicFileWriter, marker: Bool) throws -> Int {
            let entries = shard.entries  // offset order
            if options.dtype == nil && !marker {
                // Same layout: the header is copied byte for byte.
                try out.write(UnsafeRawBufferPointer(rebasing: shard.fileBytes[0..<shard.dataStart]))
            } else {
                let items = entries.map {
                    SafetensorsWriter.Item(name: $0.name, dtype: outputType($0), shape: $0.shape, byteCount: $0.elementCount * outputType($0).byteWidth)
                }
                var metadata = shard.metadata.map { ($0.key, $0.value) }.filter { $0.0 != SafetensorsWriter.markerKey }
                if marker { metadata.append((SafetensorsWriter.markerKey, "merge")) }
                try out.write(SafetensorsWriter.header(items: items, metadata: metadata))
            }
            let dataStart = out.bytesWritten
            let steps = self.steps
            let pool = self.pool, dtype = options.dtype
            let outDType: @Sendable (SafetensorsEntry) -> SafetensorsDType = { Self.outputType($0, dtype: dtype) }
            let source = ReadOnlyDescriptor(path: shard.path)
            // Arithmetic for tensor i+1 runs while tensor i is written.
            try OrderedPipeline.run(count: entries.count, produce: { i -> MergedBytes in
                let e = entries[i]
                let target = outDType(e)
                let bytes = e.elementCount * target.byteWidth
                guard let tensorSteps = steps[ModelBase.qualified(component: component, tensor: e.name)], let first = tensorSteps.first else {
                    if target == e.dtype { return .copy }
                    // Safe: only floating dtypes are converted.
                    return .computed(pool.holding(convert(StoredTensor(dtype: e.dtype.floatType!, shape: e.shape, bytes: Array(shard.bytes(of: e))), to: target)), .copied)
                }
                if tensorSteps.count > 1 {
                    let out = pool.buffer(bytes)
                    try chain(e, shard: shard, steps: tensorSteps, as: target, into: out.contents)
                    if case .replace = tensorSteps[tensorSteps.count - 1].action { return .computed(out, .replaced) }
                    return .computed(out, .updated)
                }
                // One adapter touches this tensor: straight from the base's bytes to the output dtype.
                let adapter = first.layer.adapter, scale = first.layer.scale
                switch first.action {
                case .update(let module, let replacement):
                    let out = pool.buffer(bytes)
                    try updateTensor(e, shard: shard, module: module, replacement: replacement, adapter: adapter, scale: scale,
                                     as: target, into: out.contents)
                    return .computed(out, .updated)
                case .updateRows(let modules):
                    let out = pool.buffer(bytes)
                    try updateRows(e, shard: shard, modules: modules, adapter: adapter, scale: scale, as: target, into: out.contents)
                    return .computed(out, .updated)
                case .bias(let module):
                    // Safe: MergePlan admitted only floating bias tensors.
                    var values = ElementConversion.floats(from: shard.bytes(of: e), dtype: e.dtype.floatType!)
                    try BiasUpdate.apply(module, to: &values, scale: scale)
                    return .computed(pool.holding(ElementConversion.bytes(from: values, as: target.floatType!)), .updated)
                case .replace(let value):
                    return .computed(pool.holding(convert(value, to: target)), .replaced)
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
                case .computed(let buffer, let kind):
                    try out.write(UnsafeRawBufferPointer(buffer.contents))
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
            report.bytesWritten += out.bytesWritten
            return out.bytesWritten - dataStart
        }
    }

    /// Several adapters' changes to one base tensor (`Merger.merge(_:base:output:options:)`): decoded
    /// to f32 once, each step applied to what the steps before it made, exactly as a merge of that
    /// adapter into an f32 base would apply it, rounded once to `target`.
    static func chain(_ e: SafetensorsEntry, shard: SafetensorsFile, steps: ShardWriter.Steps, as target: SafetensorsDType,
                      into output: UnsafeMutableRawBufferPointer) throws {
        // Safe: MergePlan admitted only floating base tensors and floating output dtypes.
        var w = ElementConversion.floats(from: shard.bytes(of: e), dtype: e.dtype.floatType!)
        var next = [Float](repeating: 0, count: w.count)
        for (layer, action) in steps {
            switch action {
            case .replace(let value):
                w = value.floats()
            case .bias(let module):
                try BiasUpdate.apply(module, to: &w, scale: layer.scale)
            case .update(let module, let replacement):
                if let replacement { w = replacement.floats() }
                try w.withUnsafeBytes { src in
                    try next.withUnsafeMutableBytes { dst in
                        try updateBytes(module, source: src, sourceType: .f32, adapter: layer.adapter, scale: layer.scale, as: .f32, into: dst)
                    }
                }
                swap(&w, &next)
            case .updateRows(let modules):
                try w.withUnsafeBytes { src in
                    try next.withUnsafeMutableBytes { dst in
                        try updateRows(src, sourceType: .f32, shape: e.shape, modules: modules, adapter: layer.adapter, scale: layer.scale,
                                       as: .f32, into: dst)
                    }
                }
                swap(&w, &next)
            }
        }
        // Safe: floating output dtypes only.
        w.withUnsafeBufferPointer { ElementConversion.encode($0, as: target.floatType!, into: output) }
    }

    /// A fused projection (`[R, C]`, e.g. OpenCLIP's q/k/v `in_proj_weight`) updated by several modules,
    /// each on its own rows; rows no module covers are converted unchanged.
    static func updateRows(_ e: SafetensorsEntry, shard: SafetensorsFile, modules: [(module: AdapterModule, rows: Range<Int>)], adapter: Adapter,
                           scale: Double, as target: SafetensorsDType, into output: UnsafeMutableRawBufferPointer) throws {
        // Safe: MergePlan admitted only floating 2-D base tensors and floating output dtypes.
        try updateRows(shard.bytes(of: e), sourceType: e.dtype.floatType!, shape: e.shape, modules: modules, adapter: adapter, scale: scale,
                       as: target.floatType!, into: output)
    }

    static func updateRows(_ source: UnsafeRawBufferPointer, sourceType dtype: DType, shape: [Int], modules: [(module: AdapterModule, rows: Range<Int>)],
                           adapter: Adapter, scale: Double, as outType: DType, into output: UnsafeMutableRawBufferPointer) throws {
        let cols = shape.dropFirst().reduce(1, *)
        let inRow = cols * dtype.byteWidth, outRow = cols * outType.byteWidth
        func rowsIn(_ r: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: source[(r.lowerBound * inRow)..<(r.upperBound * inRow)]) }
        func rowsOut(_ r: Range<Int>) -> UnsafeMutableRawBufferPointer {
            UnsafeMutableRawBufferPointer(rebasing: output[(r.lowerBound * outRow)..<(r.upperBound * outRow)])
        }
        var next = 0
        for (module, rows) in modules.sorted(by: { $0.rows.lowerBound < $1.rows.lowerBound }) {
            if next < rows.lowerBound { convertElements(rowsIn(next..<rows.lowerBound), from: dtype, to: outType, into: rowsOut(next..<rows.lowerBound)) }
            try updateBytes(module, source: rowsIn(rows), sourceType: dtype, adapter: adapter, scale: scale, as: outType, into: rowsOut(rows))
            next = rows.upperBound
        }
        let total = shape.first ?? 0
        if next < total { convertElements(rowsIn(next..<total), from: dtype, to: outType, into: rowsOut(next..<total)) }
    }
}
