import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// The outcome of `tlora verify FILE`.
public struct IntegrityReport: Sendable {
    public var path: String
    /// Every problem found (empty when the file is intact).
    public var problems: [FormatError]
    public var tensorsChecked: Int
    public var bytesChecked: Int

    public var isIntact: Bool { problems.isEmpty }
}

extension TLoRAFile {
    /// Checks everything a file promises: the preamble and header (checksum, schema, layout,
    /// semantics), that every padding byte is zero, every blob's checksum, that every blob decodes to
    /// exactly its declared length, and that no value is NaN or infinite.
    ///
    /// Together with the declared file length this detects every single flipped, missing or added
    /// byte: each byte of the file is covered by the header checksum, a blob checksum, or a
    /// zero-padding rule.
    public static func verify(path: String) -> IntegrityReport {
        do {
            return verify(file: try MappedFile(path: path))
        } catch let e as IOError {
            return IntegrityReport(path: path, problems: [.fileSystem(e)], tensorsChecked: 0, bytesChecked: 0)
        } catch {
            return IntegrityReport(path: path, problems: [.invalidHeader(path: path, problem: "\(error)")], tensorsChecked: 0, bytesChecked: 0)
        }
    }

    /// `verify` on a file already in memory.
    public static func verify(file mapped: MappedFile) -> IntegrityReport {
        let path = mapped.path
        let file: TLoRAFile
        do {
            file = try TLoRAFile(file: mapped)
        } catch let e as FormatError {
            return IntegrityReport(path: path, problems: [e], tensorsChecked: 0, bytesChecked: 0)
        } catch let e as IOError {
            return IntegrityReport(path: path, problems: [.fileSystem(e)], tensorsChecked: 0, bytesChecked: 0)
        } catch {
            return IntegrityReport(path: path, problems: [.invalidHeader(path: path, problem: "\(error)")], tensorsChecked: 0, bytesChecked: 0)
        }
        return file.checkIntegrity()
    }

    /// `verify` for a file already opened (header valid): padding, blobs, decoding, finiteness.
    public func checkIntegrity() -> IntegrityReport {
        var problems: [FormatError] = []
        let bytes = fileBytes
        // Zero padding between the header checksum and the data, and between blobs.
        var zeroRanges: [Range<Int>] = []
        let headerEnd = ContainerLayout.preambleLength + header.headerLength + ContainerLayout.headerChecksumLength
        zeroRanges.append(headerEnd..<header.dataStart)
        for (i, t) in header.tensors.enumerated() where i + 1 < header.tensors.count {
            let end = header.dataStart + t.offset + t.length
            zeroRanges.append(end..<(header.dataStart + header.tensors[i + 1].offset))
        }
        for r in zeroRanges {
            if let bad = r.first(where: { bytes[$0] != 0 }) { problems.append(.nonZeroPadding(path: path, offset: bad)) }
        }
        let entries = header.tensors
        let results = (try? Parallel.map(count: entries.count, worthIt: bytes.count > Self.parallelThreshold) { i -> FormatError? in
            do {
                let t = try readTensor(entries[i], context: Zstd.DecompressionContext())
                return t.allFinite ? nil : FormatError.nonFiniteValues(path: path, tensor: header.describe(entries[i].name))
            } catch let e as FormatError {
                return e
            } catch {
                return FormatError.tensorDecodeFailed(path: path, tensor: header.describe(entries[i].name), problem: "\(error)")
            }
        }) ?? []
        problems.append(contentsOf: results.compactMap { $0 })
        return IntegrityReport(path: path, problems: problems, tensorsChecked: entries.count, bytesChecked: bytes.count)
    }
}
