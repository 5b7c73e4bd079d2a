import TLoRAIO

/// The little-endian bytes of a tensor: either owned, or a range of a memory-mapped file that stays
/// mapped as long as any tensor refers to it. Readers of big files hand out mapped ranges, so
/// building an `Adapter` touches no data until something reads it.
public struct TensorBytes: Sendable, Equatable {
    private enum Storage: Sendable {
        case owned([UInt8])
        case mapped(MappedFile, Range<Int>)
    }

    private let storage: Storage

    public init(_ bytes: [UInt8]) { storage = .owned(bytes) }

    /// A view of `range` inside `file` (the range must lie inside the file).
    public init(file: MappedFile, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= file.bytes.count, "range outside the mapped file")
        storage = .mapped(file, range)
    }

    public var count: Int {
        switch storage {
        case .owned(let a): return a.count
        case .mapped(_, let r): return r.count
        }
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .owned(let a): return try a.withUnsafeBytes(body)
        case .mapped(let f, let r): return try body(UnsafeRawBufferPointer(rebasing: f.bytes[r]))
        }
    }

    /// A copy as an array.
    public var array: [UInt8] {
        switch storage {
        case .owned(let a): return a
        case .mapped: return withUnsafeBytes { Array($0) }
        }
    }

    public static func == (a: TensorBytes, b: TensorBytes) -> Bool {
        a.count == b.count && a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
    }
}
