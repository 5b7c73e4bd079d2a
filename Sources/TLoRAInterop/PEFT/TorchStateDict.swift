import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// PyTorch `torch.save` archives (PEFT's legacy `adapter_model.bin`): a zip with `<name>/data.pkl`
/// and one entry per storage, `<name>/data/<key>`. Read with `RestrictedUnpickler`: nothing is
/// executed, and only f32/f64/f16/bf16 tensors are accepted (any strides: views are gathered).
public enum TorchStateDict {
    public static func read(path: String) throws -> [(name: String, tensor: StoredTensor)] {
        let file = try MappedFile(path: path)
        return try read(file: file)
    }

    public static func read(file: MappedFile) throws -> [(name: String, tensor: StoredTensor)] {
        let path = file.path
        let zip = try ZipArchive(path: path, bytes: file.bytes)
        guard let pkl = zip.entries.first(where: { $0.name.hasSuffix("/data.pkl") || $0.name == "data.pkl" }) else {
            throw InteropError(.unrecognized, path, "not a PyTorch archive: no data.pkl entry")
        }
        let prefix = String(pkl.name.dropLast("data.pkl".count))
        if let order = zip.entry(prefix + "byteorder") {
            let text = String(decoding: zip.data(order), as: UTF8.self)
            guard text == "little" else { throw InteropError(.unsupported, path, "byte order \"\(text)\" is not supported") }
        }
        var unpickler = RestrictedUnpickler(zip.data(pkl), path: path)
        guard case .dict(var pairs) = try unpickler.run() else { throw InteropError(.unrecognized, path, "the pickle is not a state dict") }
        // A PyTorch Lightning checkpoint (`.ckpt`) keeps the model's tensors under "state_dict",
        // beside its epoch, step and optimizer states: the adapter is that dict.
        if let inner = pairs.first(where: { if case .string("state_dict") = $0.0 { return true } else { return false } })?.1,
           case .dict(let tensors) = inner {
            pairs = tensors
        }
        var out: [(String, StoredTensor)] = []
        for (k, v) in pairs {
            guard case .string(let name) = k else { throw InteropError(.unexpectedTensor, path, "state dict key is not a string") }
            guard case .tensor(let t) = v else { throw InteropError(.unexpectedTensor, path, "\(name) is not a tensor") }
            out.append((name, try tensor(t, name: name, zip: zip, prefix: prefix, file: file)))
        }
        return out
    }

    static func tensor(_ t: RestrictedUnpickler.TensorRef, name: String, zip archive: ZipArchive, prefix: String, file: MappedFile) throws -> StoredTensor {
        let path = archive.path
        let dtypes: [String: DType] = ["torch.FloatStorage": .f32, "torch.DoubleStorage": .f64, "torch.HalfStorage": .f16, "torch.BFloat16Storage": .bf16]
        guard let dtype = dtypes[t.storage.type] else {
            throw InteropError(.unsupported, path, "\(name) is stored as \(t.storage.type); adapter weights must be float32, float64, float16 or bfloat16")
        }
        guard let entry = archive.entry(prefix + "data/" + t.storage.key) else { throw InteropError(.missingTensor, path, "\(name): storage data/\(t.storage.key) is missing") }
        guard let storageBytes = CheckedSize.multiply(t.storage.elementCount, dtype.byteWidth), storageBytes == entry.data.count else {
            throw InteropError(.malformed, path, "\(name): storage data/\(t.storage.key) holds \(entry.data.count) bytes, not \(t.storage.elementCount) elements")
        }
        guard t.shape.allSatisfy({ $0 >= 0 }), let count = CheckedSize.product(t.shape) else { throw InteropError(.shapeMismatch, path, "\(name): bad shape \(t.shape)") }
        guard t.stride.count == t.shape.count, t.stride.allSatisfy({ $0 >= 0 }), t.offset >= 0 else {
            throw InteropError(.malformed, path, "\(name): stride \(t.stride) does not fit shape \(t.shape)")
        }
        let width = dtype.byteWidth
        if count == 0 { return StoredTensor(dtype: dtype, shape: t.shape, bytes: []) }
        // The last element any index reaches: offset + Σ (d − 1) · s, inside the storage.
        var last = t.offset
        for (d, s) in zip(t.shape, t.stride) {
            guard let step = CheckedSize.multiply(d - 1, s), let next = CheckedSize.add(last, step) else { throw InteropError(.malformed, path, "\(name): stride \(t.stride) overflows") }
            last = next
        }
        guard last < t.storage.elementCount else { throw InteropError(.malformed, path, "\(name): tensor runs past its storage") }
        // Views with distinct elements only (no stride-0 expansion): never more elements than the
        // storage holds, so a hostile shape cannot make the gather below allocate beyond the file.
        guard count <= t.storage.elementCount, zip(t.shape, t.stride).allSatisfy({ $0.0 <= 1 || $0.1 > 0 }) else {
            throw InteropError(.malformed, path, "\(name): an expanded view (stride \(t.stride) for shape \(t.shape)) repeats elements of its storage")
        }
        let start = entry.data.lowerBound + t.offset * width
        var contiguous = true, expected = 1
        for (d, s) in zip(t.shape, t.stride).reversed() {
            if d > 1, s != expected { contiguous = false }
            expected *= d
        }
        if contiguous {
            return StoredTensor(dtype: dtype, shape: t.shape, bytes: TensorBytes(file: file, range: start..<(start + count * width)))
        }
        // A view torch saved with its strides (a transposed or sliced core): gathered row-major.
        var out = [UInt8](repeating: 0, count: count * width)
        let source = file.bytes
        var index = [Int](repeating: 0, count: t.shape.count)
        var element = t.offset
        out.withUnsafeMutableBytes { dst in
            for n in 0..<count {
                let from = entry.data.lowerBound + element * width
                for b in 0..<width { dst[n * width + b] = source[from + b] }
                // Next index, last dimension fastest; `element` follows by the strides.
                var k = t.shape.count - 1
                while k >= 0 {
                    index[k] += 1
                    element += t.stride[k]
                    if index[k] < t.shape[k] { break }
                    element -= t.stride[k] * t.shape[k]
                    index[k] = 0
                    k -= 1
                }
            }
        }
        return StoredTensor(dtype: dtype, shape: t.shape, bytes: out)
    }
}
