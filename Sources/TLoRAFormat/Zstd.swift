import CZstd

/// Thin wrappers over libzstd's stable API. Every return code goes through `check`.
enum Zstd {
    struct Failure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    @discardableResult
    static func check(_ code: Int) throws -> Int {
        if ZSTD_isError(code) != 0 {
            throw Failure(message: String(cString: ZSTD_getErrorName(code)))
        }
        return code
    }

    /// One zstd frame holding `source`, with its content size declared in the frame header.
    /// `workers` > 0 lets libzstd split the frame's blocks over that many of its own threads (for
    /// large inputs; the frame stays one standard frame).
    static func compress(_ source: UnsafeRawBufferPointer, level: Int32, workers: Int = 0) throws -> [UInt8] {
        let bound = ZSTD_compressBound(source.count)
        try check(bound)
        var out = [UInt8](repeating: 0, count: bound)
        let written = try out.withUnsafeMutableBytes { dst -> Int in
            guard let cctx = ZSTD_createCCtx() else { throw Failure(message: "cannot allocate a zstd context") }
            defer { ZSTD_freeCCtx(cctx) }
            try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level))
            try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1))
            // The container checksums every blob with XXH64 already; a frame checksum would be redundant.
            try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0))
            // A libzstd built without threads refuses the parameter; it then compresses alone.
            if workers > 0 { _ = ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, Int32(clamping: workers)) }
            return try check(ZSTD_compress2(cctx, dst.baseAddress, dst.count, source.baseAddress, source.count))
        }
        out.removeSubrange(written...)
        return out
    }

    /// The magic number that starts a Zstandard data frame (RFC 8878 §3.1.1).
    static let dataFrameMagic: UInt32 = 0xFD2F_B528

    /// The byte length of the first frame in `source`.
    static func frameLength(_ source: UnsafeRawBufferPointer) throws -> Int {
        guard source.count > 0 else { throw Failure(message: "empty zstd stream") }
        return try check(ZSTD_findFrameCompressedSize(source.baseAddress, source.count))
    }

    /// The content size a frame declares, or nil when the frame does not declare one.
    static func declaredContentSize(_ frame: UnsafeRawBufferPointer) throws -> UInt64? {
        let size = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        // ZSTD_CONTENTSIZE_UNKNOWN = 0ULL - 1, ZSTD_CONTENTSIZE_ERROR = 0ULL - 2.
        if size == UInt64.max { return nil }
        if size == UInt64.max - 1 { throw Failure(message: "not a zstd frame") }
        return size
    }

    /// Decompresses exactly one frame (`frame` must be that frame, nothing more) into `destination`,
    /// which must be filled exactly. zstd never writes past `destination.count`.
    static func decompressFrame(_ frame: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, context: OpaquePointer) throws {
        // Only data frames (magic FD2FB528): a skippable frame would read as an empty one (docs/FORMAT.md §3).
        guard frame.count >= 4, frame.loadUnaligned(as: UInt32.self).littleEndian == dataFrameMagic else {
            throw Failure(message: "not a zstd data frame (skippable frames are not allowed)")
        }
        guard let declared = try declaredContentSize(frame) else { throw Failure(message: "zstd frame does not declare its size") }
        guard declared == UInt64(destination.count) else {
            throw Failure(message: "zstd frame declares \(declared) bytes, expected \(destination.count)")
        }
        if destination.count == 0 {
            // Still decode, so an empty frame with junk is caught.
            var scratch: UInt8 = 0
            let n = try withUnsafeMutableBytes(of: &scratch) { s in
                try check(ZSTD_decompressDCtx(context, s.baseAddress, 0, frame.baseAddress, frame.count))
            }
            guard n == 0 else { throw Failure(message: "zstd frame decoded to \(n) bytes, expected 0") }
            return
        }
        let n = try check(ZSTD_decompressDCtx(context, destination.baseAddress, destination.count, frame.baseAddress, frame.count))
        guard n == destination.count else { throw Failure(message: "zstd frame decoded to \(n) bytes, expected \(destination.count)") }
    }

    /// A decompression context and a scratch buffer for byte planes, freed on deinit. One per thread:
    /// reusing both across tensors saves an allocation and its page faults per blob.
    final class DecompressionContext {
        let pointer: OpaquePointer
        private var scratchBuffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)

        init() throws {
            guard let p = ZSTD_createDCtx() else { throw Failure(message: "cannot allocate a zstd context") }
            pointer = p
        }

        /// At least `count` bytes of scratch, valid until the next call.
        func scratch(_ count: Int) -> UnsafeMutableRawBufferPointer {
            if scratchBuffer.count < count {
                scratchBuffer.deallocate()
                scratchBuffer = .allocate(byteCount: count, alignment: 64)
            }
            return UnsafeMutableRawBufferPointer(rebasing: scratchBuffer[0..<count])
        }

        deinit {
            scratchBuffer.deallocate()
            ZSTD_freeDCtx(pointer)
        }
    }

    /// zstd's largest possible expansion: a block of at most 128 KiB can be a 4-byte RLE block, so no
    /// valid frame decodes to more than 32768 × its length (plus one block of slack).
    static func maximumDecodedLength(forCompressed length: Int) -> Int {
        let (p, o) = length.multipliedReportingOverflow(by: 32768)
        return o ? Int.max : p + 131072
    }
}
