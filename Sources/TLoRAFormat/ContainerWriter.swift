import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// Options for writing a `.tlora` file.
public struct WriteOptions: Sendable {
    public var codec: CodecChoice
    /// zstd level for every unit (byte plane, or tensor for `zstd`) that compresses at a level-1
    /// probe (1…22); mantissa planes that do not compress never pay for a high level. nil: level 1,
    /// and `automaticHighLevel` on the smallest compressible units up to `automaticHighLevelBudget`
    /// bytes in total (docs/FORMAT.md §3.1, measured in docs/BENCHMARKS.md).
    public var level: Int32?
    /// Replace an existing output.
    public var overwrite: Bool
    /// Hears (bytes encoded, bytes) as tensors are encoded, from any thread.
    public var progress: (@Sendable (Int, Int) -> Void)?

    /// The level the automatic choice spends on small units: the best ratio on float exponent
    /// planes (1–2 % smaller files than level 1), at 1–5 MB/s.
    public static let automaticHighLevel: Int32 = 19
    /// Bytes of units the automatic choice compresses at `automaticHighLevel` (smallest first): at
    /// most ~0.5 s of one core, however large the adapter.
    public static let automaticHighLevelBudget = 1 << 20

    public init(codec: CodecChoice = .automatic, level: Int32? = nil, overwrite: Bool = false) {
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
        // Whatever produced the adapter has freed its temporaries; hand them back before encoding.
        releaseFreeMemory()
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
        let encoded = try encode(named.map(\.tensor), options: options)
        var entries: [TensorEntry] = []
        var offset = 0
        for (i, item) in named.enumerated() {
            let blob = encoded[i]
            let length = blob.length(of: item.tensor)
            entries.append(TensorEntry(name: item.name, dtype: item.tensor.dtype, shape: item.tensor.shape, codec: blob.codec,
                                       offset: offset, length: length, checksum: blob.checksum(of: item.tensor)))
            offset = (offset + length + ContainerLayout.alignment - 1) / ContainerLayout.alignment * ContainerLayout.alignment
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
        for (i, blob) in encoded.enumerated() {
            try output.pad(to: ContainerLayout.alignment)
            precondition(output.bytesWritten == dataStart + entries[i].offset, "layout drift")
            try blob.write(of: named[i].tensor, to: output)
        }
        precondition(output.bytesWritten == fileLength, "length drift")
        try output.commit()
        return WriteReport(path: path, fileLength: fileLength, tensors: entries)
    }

    /// Encodes every tensor (in parallel): a level-1 probe of every unit, then — with no level given —
    /// `automaticHighLevel` on the smallest compressible units within the budget, then the automatic
    /// codec choice: byte-grouped zstd, unless it saves less than 1 % (then raw, which readers can
    /// map without decoding).
    static func encode(_ tensors: [StoredTensor], options: WriteOptions) throws -> [EncodedBlob] {
        let totalBytes = tensors.reduce(0) { $0 + $1.bytes.count }
        let codec: Codec
        switch options.codec {
        case .forced(let c): codec = c
        case .automatic: codec = .bytegroupZstd
        }
        let counter = ProgressCounter(total: totalBytes, report: options.progress)
        var blobs = try Parallel.map(count: tensors.count, worthIt: totalBytes > 256 << 10) { i in
            defer { counter.advance(by: tensors[i].bytes.count) }
            return try tensors[i].bytes.withUnsafeBytes { raw in
                try CodecEngine.firstPass(raw, width: tensors[i].dtype.byteWidth, codec: codec, level: options.level)
            }
        }
        if options.level == nil {
            // Smallest first, ties in file order: deterministic for a given adapter.
            let candidates = blobs.enumerated().flatMap { i, b in b.candidates.map { (tensor: i, unit: $0.unit, length: $0.length) } }
                .sorted { ($0.length, $0.tensor, $0.unit) < ($1.length, $1.tensor, $1.unit) }
            var chosen: [Int: Set<Int>] = [:]
            var spent = 0
            for c in candidates {
                guard spent + c.length <= WriteOptions.automaticHighLevelBudget else { break }
                spent += c.length
                chosen[c.tensor, default: []].insert(c.unit)
            }
            let work = chosen.keys.sorted()
            let raised = try Parallel.map(count: work.count, worthIt: spent > 32 << 10) { j -> CodecEngine.PendingBlob in
                let i = work[j]
                var blob = blobs[i]
                try tensors[i].bytes.withUnsafeBytes { raw in
                    try CodecEngine.raise(&blob, units: chosen[i] ?? [], decoded: raw, width: tensors[i].dtype.byteWidth,
                                          level: WriteOptions.automaticHighLevel)
                }
                return blob
            }
            for (j, i) in work.enumerated() { blobs[i] = raised[j] }
        }
        return tensors.indices.map { i in
            if blobs[i].codec == .raw || (options.codec == .automatic && Double(blobs[i].storedLength) >= 0.99 * Double(tensors[i].bytes.count)) {
                return .raw
            }
            return .frames(blobs[i].codec, blobs[i].frames)
        }
    }
}

/// A tensor's stored blob: its own bytes (`raw`, written straight from the tensor, mapped or not),
/// or zstd frames written back to back.
enum EncodedBlob {
    case raw
    case frames(Codec, [[UInt8]])

    var codec: Codec {
        if case .frames(let c, _) = self { return c }
        return .raw
    }

    func length(of t: StoredTensor) -> Int {
        switch self {
        case .raw: return t.bytes.count
        case .frames(_, let f): return f.reduce(0) { $0 + $1.count }
        }
    }

    func checksum(of t: StoredTensor) -> UInt64 {
        switch self {
        case .raw: return t.bytes.withUnsafeBytes { XXH64.hash($0) }
        case .frames(_, let frames):
            var h = XXH64()
            for f in frames { f.withUnsafeBytes { h.update($0) } }
            return h.finalize()
        }
    }

    func write(of t: StoredTensor, to output: AtomicFileWriter) throws {
        switch self {
        case .raw: try t.bytes.withUnsafeBytes { try output.write($0) }
        case .frames(_, let frames): for f in frames { try output.write(f) }
        }
    }
}

extension OutputKind {
    /// A `.tlora` file (only tlora writes them): recognized by its magic.
    public static let tloraFile = OutputKind.file("a .tlora file", magic: ContainerLayout.magic)
}
