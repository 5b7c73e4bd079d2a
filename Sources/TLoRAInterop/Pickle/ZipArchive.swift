import TLoRAIO

/// A read-only view of the stored (uncompressed) entries of a zip archive, as `torch.save` writes
/// them. Every offset and length is checked against the file; entries may not overlap; compressed,
/// encrypted, zip64 and multi-disk archives are refused with the reason.
struct ZipArchive {
    struct Entry {
        var name: String
        /// Byte range of the entry's data in the file.
        var data: Range<Int>
    }

    let path: String
    let bytes: UnsafeRawBufferPointer
    private(set) var entries: [Entry] = []
    private var byName: [String: Int] = [:]

    static let maxEntries = 1 << 20

    init(path: String, bytes: UnsafeRawBufferPointer) throws {
        self.path = path
        self.bytes = bytes
        func fail(_ p: String) -> InteropError { InteropError(.malformed, path, "not a valid PyTorch archive: \(p)") }
        func fail(_ code: InteropError.Code, _ p: String) -> InteropError { InteropError(code, path, "not a valid PyTorch archive: \(p)") }
        // End of central directory: 22 bytes plus a comment of at most 65535, at the end.
        guard bytes.count >= 22 else { throw fail("\(bytes.count) bytes is too short for a zip file") }
        var eocd: Int? = nil
        var i = bytes.count - 22
        let lowest = max(0, bytes.count - 22 - 65535)
        while i >= lowest {
            if bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self) == 0x0605_4B50 { eocd = i; break }
            i -= 1
        }
        guard let e = eocd else { throw fail("no end-of-central-directory record") }
        var r = ByteReader(bytes, offset: e + 4)
        guard let disk = r.readInteger(as: UInt16.self), let cdDisk = r.readInteger(as: UInt16.self),
              let countHere = r.readInteger(as: UInt16.self), let count = r.readInteger(as: UInt16.self),
              let cdSize = r.readInteger(as: UInt32.self), let cdOffset = r.readInteger(as: UInt32.self) else {
            throw fail("truncated end-of-central-directory record")
        }
        guard disk == 0, cdDisk == 0, countHere == count else { throw fail(.unsupported, "multi-disk archives are not supported") }
        if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            throw fail(.unsupported, "zip64 archives (files over 4 GB) are not supported")
        }
        let cdStart = Int(cdOffset), cdEnd = cdStart + Int(cdSize)
        guard cdEnd <= e else { throw fail("central directory at \(cdStart)+\(cdSize) runs past its end record") }
        var reader = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[0..<cdEnd]), offset: cdStart)
        var taken: [Range<Int>] = []
        for n in 0..<Int(count) {
            guard reader.readInteger(as: UInt32.self) == 0x0201_4B50 else { throw fail("central directory entry \(n) has a bad signature") }
            guard let _ = reader.skip(4),  // versions
                  let flags = reader.readInteger(as: UInt16.self), let method = reader.readInteger(as: UInt16.self),
                  let _ = reader.skip(8),  // time, date, crc
                  let compressed = reader.readInteger(as: UInt32.self), let size = reader.readInteger(as: UInt32.self),
                  let nameLength = reader.readInteger(as: UInt16.self), let extraLength = reader.readInteger(as: UInt16.self),
                  let commentLength = reader.readInteger(as: UInt16.self), let _ = reader.skip(8),  // disk, attributes
                  let localOffset = reader.readInteger(as: UInt32.self),
                  let nameBytes = reader.readBytes(Int(nameLength)),
                  let _ = reader.skip(Int(extraLength) + Int(commentLength)) else {
                throw fail("central directory entry \(n) is truncated")
            }
            guard let name = String(validating: nameBytes, as: UTF8.self) else { throw fail("entry \(n) has a non-UTF-8 name") }
            guard flags & 1 == 0 else { throw fail("entry \(name) is encrypted") }
            guard method == 0 else { throw fail("entry \(name) is compressed (method \(method)); torch.save writes stored entries") }
            guard compressed == size else { throw fail("entry \(name) has stored size \(compressed) but size \(size)") }
            guard compressed != 0xFFFF_FFFF, localOffset != 0xFFFF_FFFF else { throw fail(.unsupported, "zip64 entries are not supported") }
            // The local header says where the data starts.
            var local = ByteReader(bytes, offset: Int(localOffset))
            guard local.readInteger(as: UInt32.self) == 0x0403_4B50, let _ = local.skip(22),
                  let localName = local.readInteger(as: UInt16.self), let localExtra = local.readInteger(as: UInt16.self),
                  let _ = local.skip(Int(localName) + Int(localExtra)) else {
                throw fail("local header of \(name) is missing or truncated")
            }
            let start = local.offset
            let end = start + Int(size)
            guard end <= cdStart else { throw fail("data of \(name) runs into the central directory") }
            taken.append(Int(localOffset)..<end)
            guard byName[name] == nil else { throw fail("entry \(name) appears twice") }
            byName[name] = entries.count
            entries.append(Entry(name: name, data: start..<end))
        }
        // No two entries may share bytes (sorted once, so hostile counts stay linear).
        taken.sort { $0.lowerBound < $1.lowerBound }
        for (a, b) in zip(taken, taken.dropFirst()) where a.upperBound > b.lowerBound {
            throw fail("two entries overlap at byte \(b.lowerBound)")
        }
    }

    func entry(_ name: String) -> Entry? { byName[name].map { entries[$0] } }

    func data(_ e: Entry) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[e.data]) }
}
