/// XXH64 (Yann Collet's xxHash, 64-bit variant, seed 0 unless given), the checksum of `.tlora` files.
///
/// Chosen because it is specified in one page, implemented in every language, and hashes at memory
/// speed; like any 64-bit checksum it detects every single-byte change with certainty.
package struct XXH64 {
    private static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    private var v1: UInt64, v2: UInt64, v3: UInt64, v4: UInt64
    private let seed: UInt64
    private var totalLength: UInt64 = 0
    private var buffer: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var bufferCount = 0

    package init(seed: UInt64 = 0) {
        self.seed = seed
        v1 = seed &+ XXH64.p1 &+ XXH64.p2
        v2 = seed &+ XXH64.p2
        v3 = seed
        v4 = seed &- XXH64.p1
    }

    @inline(__always) private static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        var a = acc &+ input &* p2
        a = (a << 31) | (a >> 33)
        return a &* p1
    }

    @inline(__always) private static func merge(_ acc: UInt64, _ val: UInt64) -> UInt64 {
        let a = acc ^ round(0, val)
        return a &* p1 &+ p4
    }

    /// One-shot hash of a buffer.
    package static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        var h = XXH64(seed: seed)
        h.update(bytes)
        return h.finalize()
    }

    package static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { hash($0, seed: seed) }
    }

    /// Feeds more bytes.
    package mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var p = 0
        let n = bytes.count
        totalLength &+= UInt64(n)
        // Complete a partial 32-byte stripe left from the previous call.
        if bufferCount > 0 {
            withUnsafeMutableBytes(of: &buffer) { buf in
                let take = Swift.min(32 - bufferCount, n)
                buf.baseAddress!.advanced(by: bufferCount).copyMemory(from: base, byteCount: take)  // safe: 32-byte tuple
                bufferCount += take
                p = take
            }
            if bufferCount < 32 { return }
            withUnsafeBytes(of: buffer) { stripe(UnsafeRawPointer($0.baseAddress!)) }  // safe: tuple storage
            bufferCount = 0
        }
        while n - p >= 32 {
            stripe(base + p)
            p += 32
        }
        if p < n {
            withUnsafeMutableBytes(of: &buffer) { buf in
                buf.baseAddress!.copyMemory(from: base + p, byteCount: n - p)  // safe: fewer than 32 bytes
            }
            bufferCount = n - p
        }
    }

    @inline(__always) private mutating func stripe(_ ptr: UnsafeRawPointer) {
        v1 = XXH64.round(v1, UInt64(littleEndian: ptr.loadUnaligned(fromByteOffset: 0, as: UInt64.self)))
        v2 = XXH64.round(v2, UInt64(littleEndian: ptr.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        v3 = XXH64.round(v3, UInt64(littleEndian: ptr.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
        v4 = XXH64.round(v4, UInt64(littleEndian: ptr.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
    }

    /// The hash of everything fed so far.
    package func finalize() -> UInt64 {
        var h: UInt64
        if totalLength >= 32 {
            h = ((v1 << 1) | (v1 >> 63)) &+ ((v2 << 7) | (v2 >> 57)) &+ ((v3 << 12) | (v3 >> 52)) &+ ((v4 << 18) | (v4 >> 46))
            h = XXH64.merge(h, v1)
            h = XXH64.merge(h, v2)
            h = XXH64.merge(h, v3)
            h = XXH64.merge(h, v4)
        } else {
            h = seed &+ XXH64.p5
        }
        h &+= totalLength
        var tail = buffer
        let count = bufferCount
        withUnsafeBytes(of: &tail) { raw in
            let ptr = raw.baseAddress!  // safe: tuple storage
            var i = 0
            while i + 8 <= count {
                let k = XXH64.round(0, UInt64(littleEndian: ptr.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
                h ^= k
                h = ((h << 27) | (h >> 37)) &* XXH64.p1 &+ XXH64.p4
                i += 8
            }
            if i + 4 <= count {
                h ^= UInt64(UInt32(littleEndian: ptr.loadUnaligned(fromByteOffset: i, as: UInt32.self))) &* XXH64.p1
                h = ((h << 23) | (h >> 41)) &* XXH64.p2 &+ XXH64.p3
                i += 4
            }
            while i < count {
                h ^= UInt64(ptr.load(fromByteOffset: i, as: UInt8.self)) &* XXH64.p5
                h = ((h << 11) | (h >> 53)) &* XXH64.p1
                i += 1
            }
        }
        h ^= h >> 33
        h &*= XXH64.p2
        h ^= h >> 29
        h &*= XXH64.p3
        h ^= h >> 32
        return h
    }

    /// 16 lowercase hex digits, as written in `.tlora` headers.
    package static func hex(_ value: UInt64) -> String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// Parses exactly 16 lowercase hex digits.
    package static func parseHex(_ text: String) -> UInt64? {
        guard text.utf8.count == 16, text.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else { return nil }
        return UInt64(text, radix: 16)
    }
}
