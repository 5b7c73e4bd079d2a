import CTLoRAKernels
import TLoRANumerics

/// How a tensor's bytes are stored in a `.tlora` blob (see docs/FORMAT.md, "Codecs").
public enum Codec: String, Sendable, CaseIterable, Equatable {
    /// The little-endian element bytes as they are; can be memory-mapped.
    case raw
    /// One zstd frame of the element bytes.
    case zstd
    /// Byte planes (sign bit rotated into the lowest bit, most significant plane first), each plane
    /// its own zstd frame, frames concatenated. Wins on floats: the exponent plane compresses well.
    case bytegroupZstd = "bytegroup-zstd"
}

/// What the writer should do about codecs.
public enum CodecChoice: Sendable, Equatable {
    /// Per tensor, the smallest of byte-grouped zstd and raw (raw also when compression saves < 1%).
    case automatic
    case forced(Codec)
}

enum CodecEngine {
    /// Encodes decoded little-endian element bytes.
    static func encode(_ decoded: UnsafeRawBufferPointer, width: Int, codec: Codec, level: Int32) throws -> [UInt8] {
        switch codec {
        case .raw:
            return Array(decoded)
        case .zstd:
            return try Zstd.compress(decoded, level: level)
        case .bytegroupZstd:
            let count = decoded.count / width
            precondition(count * width == decoded.count)
            var planes = [UInt8](repeating: 0, count: decoded.count)
            planes.withUnsafeMutableBytes { dst in
                if count > 0 {
                    tlora_bytegroup_encode(decoded.baseAddress!.assumingMemoryBound(to: UInt8.self),  // safe: count > 0
                                           dst.baseAddress!.assumingMemoryBound(to: UInt8.self), count, width)
                }
            }
            var out: [UInt8] = []
            try planes.withUnsafeBytes { all in
                for p in 0..<width {
                    let plane = UnsafeRawBufferPointer(rebasing: all[(p * count)..<((p + 1) * count)])
                    out.append(contentsOf: try compressPlane(plane, level: level))
                }
            }
            return out
        }
    }

    /// Mantissa planes of trained weights are close to random: a fast level-1 probe finds them, and
    /// above `fullEffortLimit` bytes its result is kept (zstd stores such data as raw blocks), so the
    /// slow high levels run only where they pay: on exponent planes, on zeroed low bytes, and on small
    /// planes, where Huffman-coding a nearly random byte still saves ~1% at negligible cost.
    static let fullEffortLimit = 64 << 10

    private static func compressPlane(_ plane: UnsafeRawBufferPointer, level: Int32) throws -> [UInt8] {
        let probe = try Zstd.compress(plane, level: 1)
        if level <= 1 || (plane.count > fullEffortLimit && Double(probe.count) >= 0.97 * Double(plane.count)) { return probe }
        let full = try Zstd.compress(plane, level: level)
        return full.count <= probe.count ? full : probe
    }

    /// Decodes a stored blob into `destination` (exactly the decoded length). Never writes past it,
    /// and fails unless the stored bytes are consumed exactly.
    static func decode(_ stored: UnsafeRawBufferPointer, width: Int, codec: Codec, into destination: UnsafeMutableRawBufferPointer,
                       context: Zstd.DecompressionContext) throws {
        switch codec {
        case .raw:
            guard stored.count == destination.count else {
                throw Zstd.Failure(message: "raw blob holds \(stored.count) bytes, expected \(destination.count)")
            }
            if let d = destination.baseAddress, let s = stored.baseAddress { d.copyMemory(from: s, byteCount: stored.count) }
        case .zstd:
            let frame = try Zstd.frameLength(stored)
            guard frame == stored.count else { throw Zstd.Failure(message: "\(stored.count - frame) bytes follow the zstd frame") }
            try Zstd.decompressFrame(stored, into: destination, context: context.pointer)
        case .bytegroupZstd:
            let count = destination.count / width
            guard count * width == destination.count else { throw Zstd.Failure(message: "decoded length is not a multiple of the element width") }
            let planes = context.scratch(destination.count)
            var offset = 0
            for p in 0..<width {
                let rest = UnsafeRawBufferPointer(rebasing: stored[offset...])
                let frame = try Zstd.frameLength(rest)
                let target = UnsafeMutableRawBufferPointer(rebasing: planes[(p * count)..<((p + 1) * count)])
                try Zstd.decompressFrame(UnsafeRawBufferPointer(rebasing: rest[0..<frame]), into: target, context: context.pointer)
                offset += frame
            }
            guard offset == stored.count else { throw Zstd.Failure(message: "\(stored.count - offset) bytes follow the last byte-plane frame") }
            if count > 0 {
                tlora_bytegroup_decode(planes.baseAddress!.assumingMemoryBound(to: UInt8.self),  // safe: count > 0
                                       destination.baseAddress!.assumingMemoryBound(to: UInt8.self), count, width)
            }
        }
    }
}
