import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// Writes safetensors files the way the reference implementation does: header JSON padded with
/// spaces to a multiple of 8 bytes, tensors packed in the order given.
public enum SafetensorsWriter {
    /// The `__metadata__` key that marks a safetensors file tlora wrote (merged single files, kohya
    /// exports), so `--force` may replace it and nothing else.
    public static let markerKey = "tlora_output"

    /// A safetensors file tlora wrote: its header's metadata holds `markerKey`.
    public static let outputKind = OutputKind(file: "a safetensors file written by tlora") { path in
        guard let file = try? SafetensorsFile(path: path) else { return false }
        return file.metadata.contains { $0.key == markerKey }
    }

    public struct Item {
        public var name: String
        public var dtype: SafetensorsDType
        public var shape: [Int]
        public var byteCount: Int

        public init(name: String, dtype: SafetensorsDType, shape: [Int], byteCount: Int) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.byteCount = byteCount
        }
    }

    /// The header bytes (length prefix, JSON, padding) for `items` in order.
    public static func header(items: [Item], metadata: [(String, String)]) -> [UInt8] {
        var root = JSONObject()
        if !metadata.isEmpty { root["__metadata__"] = .object(JSONObject(metadata.map { ($0.0, JSONValue($0.1)) })) }
        var offset = 0
        for item in items {
            root[item.name] = .object(JSONObject([
                ("dtype", JSONValue(item.dtype.rawValue)), ("shape", JSONValue(item.shape)),
                ("data_offsets", JSONValue([offset, offset + item.byteCount])),
            ]))
            offset += item.byteCount
        }
        var json = JSONWriter.bytes(.object(root))
        while json.count % 8 != 0 { json.append(0x20) }
        var w = ByteWriter(capacity: json.count + 8)
        w.write(UInt64(json.count))
        w.write(json)
        return w.bytes
    }

    /// The order the reference `safetensors` library (0.8) stores tensors in: by dtype, widest first
    /// (its `Dtype` order: F64, F32, BF16, F16), then by name bytewise. For a file of one dtype the
    /// header lists them in the same order, so writing in this order reproduces its files exactly.
    public static func referenceOrder(_ tensors: [(name: String, tensor: StoredTensor)]) -> [(name: String, tensor: StoredTensor)] {
        func rank(_ d: DType) -> Int {
            switch d {
            case .f64: return 0
            case .f32: return 1
            case .bf16: return 2
            case .f16: return 3
            }
        }
        return tensors.sorted { x, y in
            let (rx, ry) = (rank(x.tensor.dtype), rank(y.tensor.dtype))
            return rx != ry ? rx < ry : Array(x.name.utf8).lexicographicallyPrecedes(Array(y.name.utf8))
        }
    }

    /// Writes named stored tensors as one safetensors file, atomically.
    public static func write(_ tensors: [(name: String, tensor: StoredTensor)], metadata: [(String, String)] = [], to path: String, overwrite: Bool) throws {
        let out = try AtomicFileWriter(destination: path, overwrite: overwrite)
        try write(tensors, metadata: metadata, into: out)
        try out.commit()
    }

    /// Writes into an open atomic writer (which the caller commits).
    package static func write(_ tensors: [(name: String, tensor: StoredTensor)], metadata: [(String, String)] = [], into out: AtomicFileWriter) throws {
        let items = tensors.map { Item(name: $0.name, dtype: SafetensorsDType($0.tensor.dtype), shape: $0.tensor.shape, byteCount: $0.tensor.bytes.count) }
        try out.write(header(items: items, metadata: metadata))
        for t in tensors { try t.tensor.bytes.withUnsafeBytes { try out.write($0) } }
    }
}
