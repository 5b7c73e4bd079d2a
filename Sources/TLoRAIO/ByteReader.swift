/// A bounds-checked little-endian cursor over untrusted bytes.
///
/// Every read returns `nil` instead of trapping when the bytes run out, so a parser turns a short
/// input into its own error with the offset. Reads are unaligned-safe.
package struct ByteReader {
    package let bytes: UnsafeRawBufferPointer
    package private(set) var offset: Int

    package init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    package var remaining: Int { bytes.count - offset }

    /// Reads a fixed-width integer stored little-endian.
    package mutating func readInteger<T: FixedWidthInteger>(as: T.Type = T.self) -> T? {
        let size = MemoryLayout<T>.size
        guard remaining >= size, let base = bytes.baseAddress else { return nil }
        let value = base.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += size
        return T(littleEndian: value)
    }

    /// Reads an IEEE float stored little-endian.
    package mutating func readFloat32() -> Float? { readInteger(as: UInt32.self).map(Float.init(bitPattern:)) }
    package mutating func readFloat64() -> Double? { readInteger(as: UInt64.self).map(Double.init(bitPattern:)) }

    /// The next `count` bytes as a slice of the underlying buffer (no copy), or nil if fewer remain.
    package mutating func readBytes(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, remaining >= count else { return nil }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        offset += count
        return slice
    }

    /// Skips `count` bytes; nil if fewer remain.
    package mutating func skip(_ count: Int) -> Void? {
        guard count >= 0, remaining >= count else { return nil }
        offset += count
        return ()
    }

    /// Moves to an absolute offset inside the buffer; nil if outside.
    package mutating func seek(to newOffset: Int) -> Void? {
        guard newOffset >= 0, newOffset <= bytes.count else { return nil }
        offset = newOffset
        return ()
    }
}

/// Little-endian appending writer into a growable byte array.
package struct ByteWriter {
    package private(set) var bytes: [UInt8] = []

    package init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    package mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    package mutating func write(_ raw: UnsafeRawBufferPointer) { bytes.append(contentsOf: raw) }
    package mutating func write(_ raw: [UInt8]) { bytes.append(contentsOf: raw) }
    package mutating func write(_ string: String) { bytes.append(contentsOf: Array(string.utf8)) }

    /// Appends zero bytes until the length is a multiple of `alignment`.
    package mutating func pad(to alignment: Int) {
        let rem = bytes.count % alignment
        if rem != 0 { bytes.append(contentsOf: repeatElement(0, count: alignment - rem)) }
    }
}

/// Checked arithmetic for sizes read from files: nil instead of a trap on overflow.
package enum CheckedSize {
    /// The product of `dims`, or nil if any is negative or the product overflows `Int`.
    package static func product(_ dims: [Int]) -> Int? {
        var p = 1
        for d in dims {
            guard d >= 0 else { return nil }
            let (r, o) = p.multipliedReportingOverflow(by: d)
            if o { return nil }
            p = r
        }
        return p
    }

    package static func multiply(_ a: Int, _ b: Int) -> Int? {
        let (r, o) = a.multipliedReportingOverflow(by: b)
        return o ? nil : r
    }

    package static func add(_ a: Int, _ b: Int) -> Int? {
        let (r, o) = a.addingReportingOverflow(b)
        return o ? nil : r
    }

    /// `value` rounded up to a multiple of `alignment` (a power of two), or nil on overflow.
    package static func alignUp(_ value: Int, to alignment: Int) -> Int? {
        guard alignment > 0, alignment & (alignment - 1) == 0, value >= 0 else { return nil }
        guard let sum = add(value, alignment - 1) else { return nil }
        return sum & ~(alignment - 1)
    }
}
