import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// An open `.tlora` file: the header parsed and validated, tensor data read on demand.
///
/// Opening maps the file and reads only the preamble and header, so it costs the same for a 1 KB and
/// a 10 GB file. Each `readTensor` checks that blob's checksum before decoding it.
public final class TLoRAFile: Sendable {
    public let path: String
    public let header: ContainerHeader
    private let file: MappedFile

    /// True when the first bytes of `path` are the `.tlora` magic.
    public static func looksLikeTLoRA(path: String) -> Bool {
        guard let head = try? readFileBytes(path: path, count: ContainerLayout.magic.count) else { return false }
        return head == ContainerLayout.magic
    }

    public convenience init(path: String) throws {
        try self.init(file: try MappedFile(path: path))
    }

    /// Parses a file already in memory (`file.path` names it in messages).
    public init(file: MappedFile) throws {
        self.path = file.path
        self.file = file
        self.header = try ContainerHeader.parse(file.bytes, fileSize: file.bytes.count, path: file.path)
    }

    /// The whole file.
    var fileBytes: UnsafeRawBufferPointer { file.bytes }

    /// The stored (encoded) bytes of a blob. Safe: `checkLayout` proved every blob lies inside the file.
    public func storedBytes(_ entry: TensorEntry) -> UnsafeRawBufferPointer {
        let start = header.dataStart + entry.offset
        return UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + entry.length)])
    }

    /// Reads and decodes one tensor after checking its checksum.
    public func readTensor(_ name: String) throws -> StoredTensor {
        guard let entry = header.entry(name) else { throw FormatError.noSuchTensor(path: path, tensor: name) }
        let context = try Zstd.DecompressionContext()
        return try readTensor(entry, context: context)
    }

    func readTensor(_ entry: TensorEntry, context: Zstd.DecompressionContext) throws -> StoredTensor {
        let stored = storedBytes(entry)
        guard XXH64.hash(stored) == entry.checksum else { throw FormatError.tensorChecksumMismatch(path: path, tensor: header.describe(entry.name)) }
        let decodedLength = entry.decodedLength
        let bytes = try [UInt8](unsafeUninitializedCapacity: decodedLength) { buffer, initialized in
            do {
                try CodecEngine.decode(stored, width: entry.dtype.byteWidth, codec: entry.codec,
                                       into: UnsafeMutableRawBufferPointer(buffer), context: context)
            } catch {
                throw FormatError.tensorDecodeFailed(path: path, tensor: header.describe(entry.name), problem: "\(error)")
            }
            initialized = decodedLength
        }
        let tensor = StoredTensor(dtype: entry.dtype, shape: entry.shape, bytes: bytes)
        // NaN and infinities make a file invalid (docs/FORMAT.md §2.2): no reader hands them out.
        guard tensor.allFinite else { throw FormatError.nonFiniteValues(path: path, tensor: header.describe(entry.name)) }
        return tensor
    }

    /// Reads and decodes every tensor in header order on the calling thread, reusing one
    /// decompression context (what one core can do; `tlora-bench decode` measures it).
    public func readAllTensorsSerially() throws -> [StoredTensor] {
        let context = try Zstd.DecompressionContext()
        return try header.tensors.map { try readTensor($0, context: context) }
    }

    /// Files smaller than this are decoded on one thread.
    static let parallelThreshold = 1 << 20

    /// Whether the file is an adapter bank (§2.8) rather than one adapter.
    public var isBank: Bool { header.bank != nil }

    /// Reads every tensor (in parallel) and rebuilds the adapter.
    ///
    /// - Throws: `FormatError.bankNeedsMember` for a bank (use `loadBank` or `loadBankMember`).
    public func loadAdapter() throws -> Adapter {
        if let bank = header.bank { throw FormatError.bankNeedsMember(path: path, members: bank.members.map(\.name)) }
        let entries = header.tensors
        let decoded = try Parallel.map(count: entries.count, worthIt: header.fileLength > Self.parallelThreshold) { i in
            try readTensor(entries[i], context: Zstd.DecompressionContext())
        }
        var byName: [String: StoredTensor] = [:]
        for (e, t) in zip(entries, decoded) { byName[e.name] = t }
        let adapter = try HeaderEncoding.adapter(header) { name in
            // Safe: checkSemantics proved every referenced name is in the file.
            byName[name]!
        }
        do {
            try adapter.validate()
        } catch let e as ModelError {
            throw FormatError.invalidAdapter(path: path, problem: e.description)
        }
        return adapter
    }

    /// Reads a bank: every member, or only `members` and the bases they use (each read tensor's
    /// checksum is checked; the rest of the file is not touched).
    ///
    /// - Throws: `FormatError.noSuchMember` for a name the bank lacks, `invalidAdapter` when the file is
    ///   not a bank.
    public func loadBank(members: [String]? = nil) throws -> AdapterBank {
        guard let record = header.bank else {
            throw FormatError.invalidAdapter(path: path, problem: "not an adapter bank (it holds one adapter; build one with tlora bank build)")
        }
        if let missing = members?.first(where: { record.member(named: $0) == nil }) {
            throw FormatError.noSuchMember(path: path, member: missing, members: record.members.map(\.name))
        }
        let context = try Zstd.DecompressionContext()
        let bank = try HeaderEncoding.bank(header, members: members.map(Set.init)) { name in
            // Safe: checkSemantics proved every referenced name is in the file.
            try readTensor(header.entry(name)!, context: context)
        }
        do {
            try bank.validate()
        } catch let e as ModelError {
            throw FormatError.invalidAdapter(path: path, problem: e.description)
        }
        return bank
    }

    /// Member `name` of a bank as an ordinary adapter (`AdapterBank.adapter(member:)`: a LoRA of the
    /// shared rank), reading only its cores and the bases they use.
    public func loadBankMember(_ name: String, dtype: DType? = nil) throws -> Adapter {
        do {
            return try loadBank(members: [name]).adapter(member: name, dtype: dtype)
        } catch let e as ModelError {
            throw FormatError.invalidAdapter(path: path, problem: e.description)
        }
    }
}
