import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// PyTorch `torch.save` archives (PEFT's legacy `adapter_model.bin`): a zip with `<name>/data.pkl`
/// and one entry per storage, `<name>/data/<key>`. Read with `RestrictedUnpickler`: nothing is
/// executed, and only contiguous f32/f64/f16/bf16 tensors are accepted.
public enum TorchStateDict {
    public static func read(path: String) throws -> [(name: String, tensor: StoredTensor)] {
        let file = try MappedFile(path: path)
        return try read(file: file)
    }

    public static func read(file: MappedFile) throws -> [(name: String, tensor: StoredTensor)] {
        let path = file.path
        let zip = try ZipArchive(path: path, bytes: file.bytes)
        guard let pkl = zip.entries.first(where: { $0.name.hasSuffix("/data.pkl") || $0.name == "data.pkl" }) else {
            throw InteropError(path, "not a PyTorch archive: no data.pkl entry")
        }
        let prefix = String(pkl.name.dropLast("data.pkl".count))
        if let order = zip.entry(prefix + "byteorder") {
            let text = String(decoding: zip.data(order), as: UTF8.self)
            guard text == "little" else { throw InteropError(path, "byte order \"\(text)\" is not supported") }
        }
        var unpickler = RestrictedUnpickler(zip.data(pkl), path: path)
        guard case .dict(let pairs) = try unpickler.run() else { throw InteropError(path, "the pickle is not a state dict") }
        var out: [(String, StoredTensor)] = []
        for (k, v) in pairs {
            guard case .string(let name) = k else { throw InteropError(path, "state dict key is not a string") }
            guard case .tensor(let t) = v else { throw InteropError(path, "\(name) is not a tensor") }
            out.append((name, try tensor(t, name: name, zip: zip, prefix: prefix, file: file)))
        }
        return out
    }

    static func tensor(_ t: RestrictedUnpickler.TensorRef, name: String, zip archive: ZipArchive, prefix: String, file: MappedFile) throws -> StoredTensor {
        let path = archive.path
        let dtypes: [String: DType] = ["torch.FloatStorage": .f32, "torch.DoubleStorage": .f64, "torch.HalfStorage": .f16, "torch.BFloat16Storage": .bf16]
        guard let dtype = dtypes[t.storage.type] else {
            throw InteropError(path, "\(name) is stored as \(t.storage.type); adapter weights must be float32, float64, float16 or bfloat16")
        }
        guard let entry = archive.entry(prefix + "data/" + t.storage.key) else { throw InteropError(path, "\(name): storage data/\(t.storage.key) is missing") }
        guard let storageBytes = CheckedSize.multiply(t.storage.elementCount, dtype.byteWidth), storageBytes == entry.data.count else {
            throw InteropError(path, "\(name): storage data/\(t.storage.key) holds \(entry.data.count) bytes, not \(t.storage.elementCount) elements")
        }
        guard t.shape.allSatisfy({ $0 >= 0 }), let count = CheckedSize.product(t.shape) else { throw InteropError(path, "\(name): bad shape \(t.shape)") }
        // Only row-major contiguous tensors, like every state dict torch.save writes for adapters.
        var expected = 1
        for (d, s) in zip(t.shape, t.stride).reversed() {
            if d > 1, s != expected { throw InteropError(path, "\(name): non-contiguous tensor (stride \(t.stride) for shape \(t.shape))") }
            expected *= d
        }
        guard t.offset >= 0, let end = CheckedSize.add(t.offset, count), end <= t.storage.elementCount else {
            throw InteropError(path, "\(name): tensor runs past its storage")
        }
        let start = entry.data.lowerBound + t.offset * dtype.byteWidth
        return StoredTensor(dtype: dtype, shape: t.shape, bytes: TensorBytes(file: file, range: start..<(start + count * dtype.byteWidth)))
    }
}
