import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// Options for writing a `.tlora` file.
public struct WriteOptions: Sendable {
    public var codec: CodecChoice
    /// zstd level for compressible data (1…22). Mantissa planes that do not compress are found with
    /// a level-1 probe and never pay for a high level.
    public var level: Int32
    /// Replace an existing output.
    public var overwrite: Bool
    /// Hears (bytes encoded, bytes) as tensors are encoded, from any thread.
    public var progress: (@Sendable (Int, Int) -> Void)?

    /// Level 19 reaches the best ratio on float exponent planes (see docs/BENCHMARKS.md).
    public static let defaultLevel: Int32 = 19

    public init(codec: CodecChoice = .automatic, level: Int32 = WriteOptions.defaultLevel, overwrite: Bool = false) {
        self.codec = codec
        self.level = level
        self.overwrite = overwrite
    }
}

/// What was written, per tensor.
public struct WriteReport: Sendable {
    public var path: String
    public var fileLength: Int
    public var tensors: [TensorEntry]
}

/// Writes adapters as `.tlora` files (docs/FORMAT.md).
public enum ContainerWriter {
    /// Validates `adapter`, encodes every tensor (in parallel), and writes the file atomically.
    ///
    /// - Throws: `ModelError` for an inconsistent adapter, `IOError` for the file system; nothing is
    ///   left at `path` on failure.
    @discardableResult
    public static func write(_ adapter: Adapter, to path: String, options: WriteOptions = WriteOptions()) throws -> WriteReport {
        try adapter.validate()
        // Fail before the expensive encoding if the output exists.
        let output = try AtomicFileWriter(destination: path, overwrite: options.overwrite, kind: .tloraFile)
        let (document, named) = HeaderEncoding.layout(adapter)
        return try write(document, named, to: output, path: path, options: options)
    }

    /// Writes an adapter bank (docs/FORMAT.md §2.8) the same way.
    @discardableResult
    public static func write(_ bank: AdapterBank, to path: String, options: WriteOptions = WriteOptions()) throws -> WriteReport {
        try bank.validate()
        let output = try AtomicFileWriter(destination: path, overwrite: options.overwrite)
        let (document, named) = HeaderEncoding.layout(bank)
        return try write(document, named, to: output, path: path, options: options)
    }

    private static func write(_ document: HeaderEncoding.Document, _ named: [HeaderEncoding.NamedTensor], to output: AtomicFileWriter,
                              path: String, options: WriteOptions) throws -> WriteReport {
        let totalBytes = named.reduce(0) { $0 + $1.tensor.bytes.count }
        let counter = ProgressCounter(total: totalBytes, report: options.progress)
        let encoded = try Parallel.map(count: named.count, worthIt: totalBytes > 256 << 10) { i in
            defer { counter.advance(by: named[i].tensor.bytes.count) }
            return try encode(named[i].tensor, choice: options.codec, level: options.level)
        }
        var entries: [TensorEntry] = []
        var offset = 0
        for (i, item) in named.enumerated() {
            let (codec, stored) = encoded[i]
            entries.append(TensorEntry(name: item.name, dtype: item.tensor.dtype, shape: item.tensor.shape, codec: codec,
                                       offset: offset, length: stored.count, checksum: XXH64.hash(stored)))
            offset = (offset + stored.count + ContainerLayout.alignment - 1) / ContainerLayout.alignment * ContainerLayout.alignment
        }
        let json = JSONWriter.bytes(HeaderEncoding.document(document, tensors: entries))
        guard let dataStart = ContainerLayout.dataStart(headerLength: json.count), json.count <= ContainerLayout.maxHeaderLength else {
            throw FormatError.headerTooLarge(path: path, length: json.count, limit: ContainerLayout.maxHeaderLength)
        }
        let dataLength = entries.last.map { $0.offset + $0.length } ?? 0
        let fileLength = dataStart + dataLength

        var head = ByteWriter(capacity: dataStart)
        head.write(ContainerLayout.magic)
        head.write(UInt16(ContainerLayout.majorVersion))
        head.write(UInt16(ContainerLayout.minorVersion))
        head.write(UInt32(0))
        head.write(UInt64(json.count))
        head.write(UInt64(fileLength))
        head.write(json)
        head.write(XXH64.hash(head.bytes))
        head.pad(to: ContainerLayout.alignment)
        try output.write(head.bytes)
        for (i, (_, stored)) in encoded.enumerated() {
            try output.pad(to: ContainerLayout.alignment)
            precondition(output.bytesWritten == dataStart + entries[i].offset, "layout drift")
            try output.write(stored)
        }
        precondition(output.bytesWritten == fileLength, "length drift")
        try output.commit()
        return WriteReport(path: path, fileLength: fileLength, tensors: entries)
    }

    /// Encodes one tensor. Automatic choice: byte-grouped zstd, unless it saves less than 1% (then raw,
    /// which readers can map without decoding).
    static func encode(_ t: StoredTensor, choice: CodecChoice, level: Int32) throws -> (Codec, [UInt8]) {
        try t.bytes.withUnsafeBytes { raw in
            switch choice {
            case .forced(let codec):
                return (codec, try CodecEngine.encode(raw, width: t.dtype.byteWidth, codec: codec, level: level))
            case .automatic:
                let grouped = try CodecEngine.encode(raw, width: t.dtype.byteWidth, codec: .bytegroupZstd, level: level)
                if Double(grouped.count) >= 0.99 * Double(raw.count) { return (.raw, Array(raw)) }
                return (.bytegroupZstd, grouped)
            }
        }
    }
}

extension OutputKind {
    /// A `.tlora` file (only tlora writes them): recognized by its magic.
    public static let tloraFile = OutputKind.file("a .tlora file", magic: ContainerLayout.magic)
}
