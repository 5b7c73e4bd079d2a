import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// One tensor's entry in a safetensors header.
public struct SafetensorsEntry: Sendable, Equatable {
    public var name: String
    public var dtype: SafetensorsDType
    public var shape: [Int]
    /// Byte range inside the data section (after the 8-byte length and the header).
    public var dataRange: Range<Int>
    public var elementCount: Int { dataRange.count / dtype.byteWidth }
}

/// A memory-mapped safetensors file with a validated header.
///
/// Validation is at least as strict as the reference implementation (safetensors 0.8): header size
/// capped at 100 MB, UTF-8 JSON object, known dtypes, `data_offsets` contiguous from 0 without gaps
/// or overlaps, each range exactly `product(shape) × width`, no trailing bytes, metadata values
/// strings. Stricter where two parsers could disagree: duplicate JSON keys are refused.
/// Alignment is never assumed (MLX writes unpadded headers).
public final class SafetensorsFile: Sendable {
    public static let maxHeaderLength = 100_000_000

    public let path: String
    public let entries: [SafetensorsEntry]
    public let metadata: [(key: String, value: String)]
    /// Absolute offset of the data section.
    public let dataStart: Int
    let file: MappedFile
    private let index: [String: Int]

    /// Maps and validates `path`; touches no tensor data.
    public convenience init(path: String) throws {
        try self.init(file: try MappedFile(path: path))
    }

    /// Validates a file already in memory (`file.path` names it in messages).
    public init(file: MappedFile) throws {
        let path = file.path
        self.path = path
        self.file = file
        let bytes = file.bytes
        var reader = ByteReader(bytes)
        guard let rawLength = reader.readInteger(as: UInt64.self) else {
            throw InteropError(.unrecognized, path, "not a safetensors file: \(bytes.count) bytes is shorter than the 8-byte header length")
        }
        guard rawLength <= UInt64(Self.maxHeaderLength) else {
            throw InteropError(.unrecognized, path, "not a safetensors file: header length \(rawLength) exceeds 100 MB")
        }
        let headerLength = Int(rawLength)  // safe: ≤ 100 MB
        guard headerLength >= 2, 8 + headerLength <= bytes.count else {
            throw InteropError(.malformed, path, "truncated safetensors file: header needs \(headerLength) bytes, \(bytes.count - 8) present")
        }
        let json: JSONValue
        do {
            json = try JSONParser.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerLength)]))
        } catch {
            throw InteropError(.unrecognized, path, "not a safetensors file: header is \(error)")
        }
        guard let root = json.objectValue else { throw InteropError(.malformed, path, "safetensors header is not a JSON object") }
        dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart
        var entries: [SafetensorsEntry] = []
        var metadata: [(String, String)] = []
        for (key, value) in root.pairs {
            if key == "__metadata__" {
                // MLX writes null here; the reference implementation reads it as "no metadata".
                if value.isNull { continue }
                guard let m = value.objectValue else { throw InteropError(.malformed, path, "__metadata__ is not an object") }
                for (k, v) in m.pairs {
                    guard let s = v.stringValue else { throw InteropError(.malformed, path, "__metadata__.\(k) is not a string") }
                    metadata.append((k, s))
                }
                continue
            }
            entries.append(try Self.parseEntry(key, value, path: path))
        }
        // Contiguous, in offset order, covering the data section exactly.
        entries.sort { ($0.dataRange.lowerBound, $0.dataRange.upperBound) < ($1.dataRange.lowerBound, $1.dataRange.upperBound) }
        var expected = 0
        for e in entries {
            guard e.dataRange.lowerBound == expected else {
                if e.dataRange.lowerBound < expected {
                    throw InteropError(.malformed, path, "tensor \(e.name) overlaps the previous tensor (data_offsets start \(e.dataRange.lowerBound) < \(expected))")
                }
                throw InteropError(.malformed, path, "gap before tensor \(e.name): data_offsets start at \(e.dataRange.lowerBound), expected \(expected)")
            }
            expected = e.dataRange.upperBound
        }
        guard expected <= dataLength else {
            throw InteropError(.malformed, path, "truncated safetensors file: tensors need \(expected) data bytes, \(dataLength) present")
        }
        guard expected == dataLength else {
            throw InteropError(.malformed, path, "\(dataLength - expected) unexpected bytes after the last tensor")
        }
        self.entries = entries
        self.metadata = metadata
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() { index[e.name] = i }
        self.index = index
    }

    private static func parseEntry(_ name: String, _ value: JSONValue, path: String) throws -> SafetensorsEntry {
        do {
            let f = try JSONFields(value, path: name)
            let dtypeName = try f.string("dtype")
            guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                throw f.problem("dtype", "unsupported dtype \"\(dtypeName)\"")
            }
            let shape = try f.intArray("shape", min: 0, maxCount: 64)
            let offsets = try f.intArray("data_offsets", min: 0)
            guard offsets.count == 2, offsets[0] <= offsets[1] else { throw f.problem("data_offsets", "must be [begin, end] with begin ≤ end") }
            guard let count = CheckedSize.product(shape), let size = CheckedSize.multiply(count, dtype.byteWidth) else {
                throw f.problem("shape", "\(shape) overflows")
            }
            guard size == offsets[1] - offsets[0] else {
                throw f.problem("data_offsets", "span \(offsets[1] - offsets[0]) bytes but shape \(shape) of \(dtypeName) needs \(size)")
            }
            return SafetensorsEntry(name: name, dtype: dtype, shape: shape, dataRange: offsets[0]..<offsets[1])
        } catch let p as JSONFields.Problem {
            throw InteropError(.malformed, path, "tensor \(p.description)")
        }
    }

    public func entry(_ name: String) -> SafetensorsEntry? { index[name].map { entries[$0] } }

    public var tensorNames: [String] { entries.map(\.name) }

    /// The raw little-endian bytes of a tensor (a view into the mapping).
    public func bytes(of entry: SafetensorsEntry) -> UnsafeRawBufferPointer {
        let start = dataStart + entry.dataRange.lowerBound
        return UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + entry.dataRange.count)])
    }

    /// A floating tensor as a `StoredTensor` that references the mapping (no copy).
    public func tensor(_ name: String) throws -> StoredTensor {
        guard let e = entry(name) else { throw InteropError(.missingTensor, path, "no tensor named \(name)") }
        guard let dtype = e.dtype.floatType else {
            throw InteropError(.unsupported, path, "tensor \(name) has dtype \(e.dtype.rawValue); only F32, F64, F16 and BF16 tensors can be adapter weights")
        }
        let start = dataStart + e.dataRange.lowerBound
        return StoredTensor(dtype: dtype, shape: e.shape, bytes: TensorBytes(file: file, range: start..<(start + e.dataRange.count)))
    }

    /// Drops a tensor's pages from memory after use (streaming merges keep resident memory low).
    public func release(_ entry: SafetensorsEntry) {
        file.release((dataStart + entry.dataRange.lowerBound)..<(dataStart + entry.dataRange.upperBound))
    }

    /// The whole file's bytes (header and data), e.g. to copy the header verbatim.
    public var fileBytes: UnsafeRawBufferPointer { file.bytes }

    /// Hints the kernel that the file will be read sequentially.
    public func adviseSequential() { file.adviseSequential() }
}
