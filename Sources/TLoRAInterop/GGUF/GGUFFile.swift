import TLoRAIO

/// A GGUF (v2/v3) file, parsed strictly: llama.cpp's GGUF parser bugs were size arithmetic that
/// wrapped before an allocation, so every count, length, dimension and offset here is bounded by
/// the file size and overflow-checked before use (see docs/SECURITY.md).
public final class GGUFFile: Sendable {
    /// A metadata value.
    public indirect enum Value: Sendable, Equatable {
        case uint(UInt64), int(Int64), float(Double), bool(Bool), string(String)
        case array([Value])

        public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
        public var doubleValue: Double? {
            switch self {
            case .float(let d): return d
            case .int(let i): return Double(i)
            case .uint(let u): return Double(u)
            default: return nil
            }
        }
        public var intValue: Int? {
            switch self {
            case .int(let i): return Int(exactly: i)
            case .uint(let u): return Int(exactly: u)
            default: return nil
            }
        }
    }

    public struct TensorInfo: Sendable {
        public var name: String
        /// Dimensions as GGUF lists them: fastest-varying first (`ne[0]` is the row length).
        public var ne: [Int]
        public var type: GGMLType
        /// Offset from the start of the data section.
        public var offset: Int
        public var byteCount: Int
        public var elementCount: Int
    }

    public let path: String
    public let version: Int
    /// Metadata in file order.
    public let metadata: [(key: String, value: Value)]
    public let tensors: [TensorInfo]
    public let alignment: Int
    public let dataStart: Int
    let file: MappedFile

    static let maxStringLength = 1 << 24
    static let maxArrayElements = 1 << 26

    public convenience init(path: String) throws {
        try self.init(file: try MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        path = file.path
        let bytes = file.bytes
        func fail(_ p: String) -> InteropError { InteropError(.malformed, file.path, "invalid GGUF: \(p)") }
        func fail(_ code: InteropError.Code, _ p: String) -> InteropError { InteropError(code, file.path, "invalid GGUF: \(p)") }
        var r = ByteReader(bytes)
        guard let magic = r.readInteger(as: UInt32.self), magic == 0x4655_4747 else { throw fail("bad magic (not a GGUF file)") }
        guard let v = r.readInteger(as: UInt32.self) else { throw fail("truncated header") }
        guard v == 2 || v == 3 else { throw fail(.unsupported, "version \(v) is not supported (2 or 3)") }
        version = Int(v)
        guard let rawTensors = r.readInteger(as: UInt64.self), let rawKV = r.readInteger(as: UInt64.self) else { throw fail("truncated header") }
        // Every tensor info takes at least 24 bytes and every key-value at least 13: a count that
        // cannot fit in the file is refused before anything is allocated for it.
        guard rawTensors <= UInt64(bytes.count / 24) else { throw fail("tensor count \(rawTensors) cannot fit in \(bytes.count) bytes") }
        guard rawKV <= UInt64(bytes.count / 13) else { throw fail("key-value count \(rawKV) cannot fit in \(bytes.count) bytes") }

        func readString(_ what: String) throws -> String {
            guard let n = r.readInteger(as: UInt64.self) else { throw fail("truncated \(what) length") }
            guard n <= UInt64(Self.maxStringLength), let b = r.readBytes(Int(n)) else { throw fail("\(what) of \(n) bytes runs past the end of the file") }
            guard let s = String(validating: b, as: UTF8.self) else { throw fail("\(what) is not valid UTF-8") }
            return s
        }
        func readValue(type: UInt32, key: String, depth: Int) throws -> Value {
            switch type {
            case 0: guard let x = r.readInteger(as: UInt8.self) else { throw fail("truncated value of \(key)") }; return .uint(UInt64(x))
            case 1: guard let x = r.readInteger(as: Int8.self) else { throw fail("truncated value of \(key)") }; return .int(Int64(x))
            case 2: guard let x = r.readInteger(as: UInt16.self) else { throw fail("truncated value of \(key)") }; return .uint(UInt64(x))
            case 3: guard let x = r.readInteger(as: Int16.self) else { throw fail("truncated value of \(key)") }; return .int(Int64(x))
            case 4: guard let x = r.readInteger(as: UInt32.self) else { throw fail("truncated value of \(key)") }; return .uint(UInt64(x))
            case 5: guard let x = r.readInteger(as: Int32.self) else { throw fail("truncated value of \(key)") }; return .int(Int64(x))
            case 6: guard let x = r.readFloat32() else { throw fail("truncated value of \(key)") }; return .float(Double(x))
            case 7:
                guard let x = r.readInteger(as: UInt8.self), x <= 1 else { throw fail("bool value of \(key) is not 0 or 1") }
                return .bool(x == 1)
            case 8: return .string(try readString("string value of \(key)"))
            case 9:
                guard depth == 0 else { throw fail("nested array in \(key)") }
                guard let elementType = r.readInteger(as: UInt32.self), let count = r.readInteger(as: UInt64.self) else { throw fail("truncated array header of \(key)") }
                guard elementType != 9 else { throw fail("nested array in \(key)") }
                // Each element takes at least one byte (eight for a string's length).
                let minimum: UInt64 = elementType == 8 ? 8 : UInt64(Self.valueSize(elementType) ?? 1)
                guard count <= UInt64(Self.maxArrayElements), count.multipliedReportingOverflow(by: minimum).partialValue <= UInt64(r.remaining) else {
                    throw fail("array \(key) of \(count) elements runs past the end of the file")
                }
                var items: [Value] = []
                items.reserveCapacity(Int(count))
                for _ in 0..<Int(count) { items.append(try readValue(type: elementType, key: key, depth: depth + 1)) }
                return .array(items)
            case 10: guard let x = r.readInteger(as: UInt64.self) else { throw fail("truncated value of \(key)") }; return .uint(x)
            case 11: guard let x = r.readInteger(as: Int64.self) else { throw fail("truncated value of \(key)") }; return .int(x)
            case 12: guard let x = r.readFloat64() else { throw fail("truncated value of \(key)") }; return .float(x)
            default: throw fail("unknown value type \(type) for \(key)")
            }
        }
        var metadata: [(String, Value)] = []
        var keys = Set<String>()
        for _ in 0..<Int(rawKV) {
            let key = try readString("key")
            guard !key.isEmpty else { throw fail("empty key") }
            guard keys.insert(key).inserted else { throw fail("duplicate key \(key)") }
            guard let type = r.readInteger(as: UInt32.self) else { throw fail("truncated type of \(key)") }
            metadata.append((key, try readValue(type: type, key: key, depth: 0)))
        }
        self.metadata = metadata
        var alignment = 32
        if let a = metadata.first(where: { $0.0 == "general.alignment" })?.1 {
            guard case .uint(let v) = a, v > 0, v <= 1 << 20, v & (v - 1) == 0 else { throw fail("general.alignment must be a power of two (up to 1 MiB)") }
            alignment = Int(v)
        }
        self.alignment = alignment
        var infos: [TensorInfo] = []
        var names = Set<String>()
        for _ in 0..<Int(rawTensors) {
            let name = try readString("tensor name")
            guard !name.isEmpty else { throw fail("empty tensor name") }
            guard names.insert(name).inserted else { throw fail("duplicate tensor \(name)") }
            guard let nDims = r.readInteger(as: UInt32.self), nDims >= 1, nDims <= 4 else { throw fail("tensor \(name) must have 1 to 4 dimensions") }
            var ne: [Int] = []
            for _ in 0..<Int(nDims) {
                guard let d = r.readInteger(as: UInt64.self) else { throw fail("truncated dimensions of \(name)") }
                guard d >= 1, let di = Int(exactly: d), di <= Int(Int32.max) else { throw fail("tensor \(name) has dimension \(d)") }
                ne.append(di)
            }
            guard let rawType = r.readInteger(as: UInt32.self), let type = GGMLType(rawValue: rawType) else { throw fail("tensor \(name) has an unknown ggml type") }
            guard let off = r.readInteger(as: UInt64.self), let offset = Int(exactly: off) else { throw fail("truncated offset of \(name)") }
            guard offset % alignment == 0 else { throw fail("tensor \(name) offset \(offset) is not a multiple of the alignment \(alignment)") }
            guard let count = CheckedSize.product(ne) else { throw fail("tensor \(name) has too many elements") }
            guard ne[0] % type.blockSize == 0 else { throw fail("tensor \(name) rows of \(ne[0]) are not whole \(type) blocks") }
            guard let size = CheckedSize.multiply(count / type.blockSize, type.blockBytes) else { throw fail("tensor \(name) is too large") }
            infos.append(TensorInfo(name: name, ne: ne, type: type, offset: offset, byteCount: size, elementCount: count))
        }
        guard let start = CheckedSize.alignUp(r.offset, to: alignment) else { throw fail("data section offset overflows") }
        dataStart = start
        let dataLength = bytes.count - start
        guard dataLength >= 0 || infos.isEmpty else { throw fail("truncated before the data section") }
        // Tensors lie inside the data section and do not overlap.
        let sorted = infos.sorted { $0.offset < $1.offset }
        var end = 0
        for t in sorted {
            guard t.offset >= end else { throw fail("tensor \(t.name) overlaps the previous tensor") }
            guard let e = CheckedSize.add(t.offset, t.byteCount), e <= dataLength else {
                throw fail("tensor \(t.name) (\(t.byteCount) bytes at data offset \(t.offset)) runs past the end of the file")
            }
            end = e
        }
        tensors = infos
    }

    static func valueSize(_ type: UInt32) -> Int? {
        switch type {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 10, 11, 12: return 8
        default: return nil
        }
    }

    public func value(_ key: String) -> Value? { metadata.first { $0.key == key }?.value }

    public func tensor(_ name: String) -> TensorInfo? { tensors.first { $0.name == name } }

    /// The raw bytes of a tensor (validated to lie inside the file).
    public func bytes(of t: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + t.offset)..<(dataStart + t.offset + t.byteCount)])
    }

    var mappedFile: MappedFile { file }
}

/// The ggml tensor types tlora knows the size of (all of GGUF's, so any valid file parses), and the
/// ones it can read values from.
public enum GGMLType: UInt32, Sendable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_k = 10, q3_k = 11, q4_k = 12, q5_k = 13, q6_k = 14, q8_k = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30, tq1_0 = 34, tq2_0 = 35

    public var description: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        case .f64: return "F64"
        case .q8_0: return "Q8_0"
        default: return "ggml type \(rawValue)"
        }
    }

    /// Elements per block.
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_nl: return 32
        default: return 256
        }
    }

    /// Bytes per block (ggml's type_size).
    public var blockBytes: Int {
        switch self {
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .f64, .i64: return 8
        case .i8: return 1
        case .q4_0: return 18
        case .q4_1: return 20
        case .q5_0: return 22
        case .q5_1: return 24
        case .q8_0: return 34
        case .q8_1: return 36
        case .q2_k: return 84
        case .q3_k: return 110
        case .q4_k: return 144
        case .q5_k: return 176
        case .q6_k: return 210
        case .q8_k: return 292
        case .iq2_xxs: return 66
        case .iq2_xs: return 74
        case .iq3_xxs: return 98
        case .iq1_s: return 50
        case .iq4_nl: return 18
        case .iq3_s: return 110
        case .iq2_s: return 82
        case .iq4_xs: return 136
        case .iq1_m: return 56
        case .tq1_0: return 54
        case .tq2_0: return 66
        }
    }
}
