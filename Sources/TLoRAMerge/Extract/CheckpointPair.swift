#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TLoRAConvert
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// A base checkpoint and a fine-tune of it, matched tensor by tensor, both memory-mapped: a tensor's
/// difference is read from the two mappings when it is needed and its pages dropped after, so no
/// model is ever held in memory.
///
/// Refused (with the tensor and both files named): floating tensors present in only one of them,
/// shapes that differ (except a resized vocabulary: embedding-like tensors whose first dimension
/// changed), a floating tensor in one that is not floating in the other, and non-floating tensors
/// that differ. Non-floating tensors in only one (buffers such as BERT's `position_ids`, which
/// newer transformers no longer save) are left out: they are no weights and nothing to extract.
public struct CheckpointPair: Sendable {
    public let base: Checkpoint
    public let finetuned: Checkpoint

    /// One tensor of both checkpoints.
    public struct Item: Sendable {
        public var name: String
        public var base: SafetensorsEntry
        public var finetuned: SafetensorsEntry
        let baseShard: SafetensorsFile
        let finetunedShard: SafetensorsFile

        public var shape: [Int] { finetuned.shape }
        public var isFloating: Bool { base.dtype.floatType != nil && finetuned.dtype.floatType != nil }
        /// The fine-tune resized this embedding-like tensor's first dimension (a grown vocabulary).
        public var isResized: Bool { base.shape != finetuned.shape }

        /// Whether the two tensors hold the same bytes (then nothing changed).
        public var isIdentical: Bool {
            guard base.dtype == finetuned.dtype, base.shape == finetuned.shape else { return false }
            let a = baseShard.bytes(of: base), b = finetunedShard.bytes(of: finetuned)
            return a.count == b.count && (a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)  // safe: count > 0
        }

        /// `W_ft − W_base` in f64 (each side decoded exactly, subtracted once). The base is decoded
        /// in chunks, so the only full-size array is the result.
        public func difference() -> [Double] {
            // Safe: only floating items are differenced (callers check `isFloating`).
            let baseType = base.dtype.floatType!
            var out = ElementConversion.doubles(from: finetunedShard.bytes(of: finetuned), dtype: finetuned.dtype.floatType!)
            let source = baseShard.bytes(of: base)
            let width = baseType.byteWidth, chunk = 1 << 16
            var buffer = [Double](repeating: 0, count: min(chunk, out.count))
            var start = 0
            while start < out.count {
                let n = min(chunk, out.count - start)
                buffer.withUnsafeMutableBufferPointer { b in
                    ElementConversion.decode(UnsafeRawBufferPointer(rebasing: source[(start * width)..<((start + n) * width)]), dtype: baseType,
                                             into: UnsafeMutableBufferPointer(rebasing: b[0..<n]))
                }
                for i in 0..<n { out[start + i] -= buffer[i] }
                start += n
            }
            return out
        }

        /// The fine-tuned tensor as stored (a view into its mapping).
        public func finetunedTensor() throws -> StoredTensor { try finetunedShard.tensor(name) }

        /// Whether every value of the base (`base: true`) or the fine-tune is finite.
        public func allFinite(base: Bool) -> Bool {
            let shard = base ? baseShard : finetunedShard
            return (try? shard.tensor(name).allFinite) ?? true  // non-floating tensors have no NaN
        }

        /// Throws naming the checkpoint whose tensor holds NaN or an infinity (either side).
        public func requireFinite(_ pair: CheckpointPair) throws {
            for (isBase, path) in [(true, pair.base.path), (false, pair.finetuned.path)] where !allFinite(base: isBase) {
                throw ConvertError(.nonFiniteValues, "\(path): tensor \(name) holds NaN or infinite values")
            }
        }

        /// Drops both tensors' pages.
        public func release() {
            baseShard.release(base)
            finetunedShard.release(finetuned)
        }
    }

    /// Tensors in the fine-tune's file order.
    public let items: [Item]

    public init(base: Checkpoint, finetuned: Checkpoint) throws {
        self.base = base
        self.finetuned = finetuned
        let baseNames = Set(base.tensorNames), ftNames = Set(finetuned.tensorNames)
        func weight(_ c: Checkpoint, _ name: String) -> Bool { c.entry(name)?.1.dtype.floatType != nil }
        let onlyBase = base.tensorNames.filter { !ftNames.contains($0) && weight(base, $0) }
        let onlyFT = finetuned.tensorNames.filter { !baseNames.contains($0) && weight(finetuned, $0) }
        if !onlyBase.isEmpty || !onlyFT.isEmpty {
            let sample = { (names: [String]) in names.prefix(3).joined(separator: ", ") + (names.count > 3 ? ", …" : "") }
            throw ConvertError(.differentArchitecture, "\(finetuned.path): not the same architecture as \(base.path): "
                + (onlyFT.isEmpty ? "" : "\(onlyFT.count) tensor(s) only in the fine-tune (\(sample(onlyFT)))")
                + (onlyFT.isEmpty || onlyBase.isEmpty ? "" : "; ")
                + (onlyBase.isEmpty ? "" : "\(onlyBase.count) only in the base (\(sample(onlyBase)))"))
        }
        var items: [Item] = []
        for name in finetuned.tensorNames where baseNames.contains(name) {
            // Safe: both checkpoints list the name.
            let (bs, be) = base.entry(name)!, (fs, fe) = finetuned.entry(name)!
            let item = Item(name: name, base: be, finetuned: fe, baseShard: bs, finetunedShard: fs)
            if (be.dtype.floatType == nil) != (fe.dtype.floatType == nil) {
                throw ConvertError(.differentArchitecture, "\(finetuned.path): tensor \(name) is \(fe.dtype.rawValue) but \(be.dtype.rawValue) in \(base.path)")
            }
            if be.shape != fe.shape {
                let vocabulary = be.shape.count == fe.shape.count && be.shape.count == 2 && be.shape[1] == fe.shape[1] && Self.isEmbeddingLike(name)
                guard vocabulary else {
                    throw ConvertError(.differentArchitecture, "\(finetuned.path): tensor \(name) is \(Formatting.shape(fe.shape)) but \(Formatting.shape(be.shape)) in \(base.path): not a fine-tune of that base")
                }
            }
            if !item.isFloating && !item.isIdentical {
                throw ConvertError(.notSupported, "\(finetuned.path): non-floating tensor \(name) (\(fe.dtype.rawValue)) differs from \(base.path)'s")
            }
            items.append(item)
        }
        self.items = items
    }

    /// Token embeddings, position embeddings and output heads: their rows are looked up (or tied to
    /// such a table), so they stay whole (PEFT's `modules_to_save`, as mergekit does by default).
    public static func isEmbeddingLike(_ name: String) -> Bool {
        let parts = name.split(separator: ".")
        let module = parts.count >= 2 ? String(parts[parts.count - 2]) : name
        return module.contains("embed") || ["wte", "wpe", "lm_head", "shared"].contains(module)
    }
}
