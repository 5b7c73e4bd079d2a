import CTLoRAKernels
import TLoRAIO
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
    /// Mantissa planes of trained weights are close to random: a fast level-1 probe finds them, and
    /// above `fullEffortLimit` bytes its result is kept (zstd stores such data as raw blocks), so the
    /// slow high levels run only where they pay: on exponent planes, on zeroed low bytes, and on small
    /// planes, where Huffman-coding a nearly random byte still saves ~1% at negligible cost.
    static let fullEffortLimit = 64 << 10

    /// Planes at least this large are compressed by libzstd's own worker threads, one frame still:
    /// a single large tensor would otherwise keep one core busy while the other waits.
    static let workerThreshold = 8 << 20

    /// A tensor on its way through the writer: one frame per unit (the whole tensor for `zstd`, each
    /// byte plane for `bytegroup-zstd`; none for `raw`, written from the tensor), and the units that compressed
    /// at the probe and so may pay for a higher level (`candidates`, by unit index and length).
    struct PendingBlob {
        var codec: Codec
        var frames: [[UInt8]]
        var candidates: [(unit: Int, length: Int)] = []

        var storedLength: Int { frames.reduce(0) { $0 + $1.count } }
    }

    /// Probes every unit at level 1 and, when `level` is given, compresses the units that compressed
    /// at it again at `level`, keeping the smaller frame. With `level` nil the candidates are only
    /// listed; `raiseCandidate` may spend the high level on some of them later.
    static func firstPass(_ decoded: UnsafeRawBufferPointer, width: Int, codec: Codec, level: Int32?) throws -> PendingBlob {
        if codec == .raw { return PendingBlob(codec: .raw, frames: []) }
        var blob = PendingBlob(codec: codec, frames: [])
        try withUnits(decoded, width: width, codec: codec) { unit, plane in
            let workers = plane.count >= workerThreshold ? Parallel.machineCores : 0
            let probe = try Zstd.compress(plane, level: 1, workers: workers)
            let worthMore = plane.count <= fullEffortLimit || Double(probe.count) < 0.97 * Double(plane.count)
            var frame = probe
            if worthMore, let level, level > 1 {
                let full = try Zstd.compress(plane, level: level, workers: workers)
                if full.count < probe.count { frame = full }
            } else if worthMore {
                blob.candidates.append((unit, plane.count))
            }
            blob.frames.append(frame)
        }
        return blob
    }

    /// Compresses the given units of `decoded` at `level` again, keeping the smaller frames.
    static func raise(_ blob: inout PendingBlob, units: Set<Int>, decoded: UnsafeRawBufferPointer, width: Int, level: Int32) throws {
        try withUnits(decoded, width: width, codec: blob.codec) { u, plane in
            guard units.contains(u) else { return }
            let full = try Zstd.compress(plane, level: level)
            if full.count < blob.frames[u].count { blob.frames[u] = full }
        }
    }

    /// Calls `body` with each unit of a tensor: its byte planes for `bytegroup-zstd`, else the bytes.
    private static func withUnits(_ decoded: UnsafeRawBufferPointer, width: Int, codec: Codec,
                                  _ body: (Int, UnsafeRawBufferPointer) throws -> Void) throws {
        guard codec == .bytegroupZstd else { return try body(0, decoded) }
        let count = decoded.count / width
        precondition(count * width == decoded.count)
        var planes = [UInt8](repeating: 0, count: decoded.count)
        planes.withUnsafeMutableBytes { dst in
            if count > 0 {
                tlora_bytegroup_encode(decoded.baseAddress!.assumingMemoryBound(to: UInt8.self),  // safe: count > 0
                                       dst.baseAddress!.assumingMemoryBound(to: UInt8.self), count, width)
            }
        }
        try planes.withUnsafeBytes { all in
            for p in 0..<width { try body(p, UnsafeRawBufferPointer(rebasing: all[(p * count)..<((p + 1) * count)])) }
        }
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
