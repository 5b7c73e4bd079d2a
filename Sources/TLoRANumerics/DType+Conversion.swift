import CTLoRAKernels

/// Bulk conversion between little-endian stored elements and `Float`/`Double`.
///
/// Narrowing conversions round to nearest, ties to even; NaN stays a (quiet) NaN. The AVX2/F16C paths
/// and the portable fallbacks give bit-identical results.
public enum ElementConversion {
    /// Decodes `count` elements of `dtype` from `source` (little-endian, any alignment) into `Float`s.
    /// `f64` inputs are rounded to the nearest `Float`.
    public static func decode(_ source: UnsafeRawBufferPointer, dtype: DType, into destination: UnsafeMutableBufferPointer<Float>) {
        let n = destination.count
        precondition(source.count >= n * dtype.byteWidth, "source too short")
        guard n > 0, let dst = destination.baseAddress, let src = source.baseAddress else { return }
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 4)
        case .f64:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
        case .f16:
            withAligned16(src, count: n) { tlora_f16_to_f32($0, dst, n) }
        case .bf16:
            withAligned16(src, count: n) { tlora_bf16_to_f32($0, dst, n) }
        }
    }

    /// Decodes `count` elements of `dtype` into `Double`s (exact for every dtype).
    public static func decode(_ source: UnsafeRawBufferPointer, dtype: DType, into destination: UnsafeMutableBufferPointer<Double>) {
        let n = destination.count
        precondition(source.count >= n * dtype.byteWidth, "source too short")
        guard n > 0, let dst = destination.baseAddress, let src = source.baseAddress else { return }
        switch dtype {
        case .f64:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 8)
        case .f32:
            for i in 0..<n { dst[i] = Double(src.loadUnaligned(fromByteOffset: i * 4, as: Float.self)) }
        case .f16, .bf16:
            // Chunked through a small Float buffer: f16/bf16 → f32 is exact, f32 → f64 is exact.
            let chunk = 4096
            var tmp = [Float](repeating: 0, count: Swift.min(chunk, n))
            tmp.withUnsafeMutableBufferPointer { t in
                var start = 0
                while start < n {
                    let m = Swift.min(chunk, n - start)
                    decode(UnsafeRawBufferPointer(start: src + start * 2, count: m * 2), dtype: dtype,
                           into: UnsafeMutableBufferPointer(rebasing: t[0..<m]))
                    for i in 0..<m { dst[start + i] = Double(t[i]) }
                    start += m
                }
            }
        }
    }

    /// Encodes `Float`s as `dtype` (rounding once, to nearest even) into `destination`.
    public static func encode(_ source: UnsafeBufferPointer<Float>, as dtype: DType, into destination: UnsafeMutableRawBufferPointer) {
        let n = source.count
        precondition(destination.count >= n * dtype.byteWidth, "destination too short")
        guard n > 0, let src = source.baseAddress, let dst = destination.baseAddress else { return }
        switch dtype {
        case .f32:
            dst.copyMemory(from: src, byteCount: n * 4)
        case .f64:
            for i in 0..<n { dst.storeBytes(of: Double(src[i]), toByteOffset: i * 8, as: Double.self) }
        case .f16:
            tlora_f32_to_f16(src, dst.assumingMemoryBound(to: UInt16.self), n)
        case .bf16:
            tlora_f32_to_bf16(src, dst.assumingMemoryBound(to: UInt16.self), n)
        }
    }

    /// Encodes `Double`s as `dtype`. f32 rounds once; f16/bf16 go through f32 (double rounding can
    /// differ from a direct rounding in the last bit for values within 2⁻²⁴ relative of a tie).
    public static func encode(_ source: UnsafeBufferPointer<Double>, as dtype: DType, into destination: UnsafeMutableRawBufferPointer) {
        let n = source.count
        precondition(destination.count >= n * dtype.byteWidth, "destination too short")
        guard n > 0, let src = source.baseAddress, let dst = destination.baseAddress else { return }
        switch dtype {
        case .f64:
            dst.copyMemory(from: src, byteCount: n * 8)
        case .f32:
            for i in 0..<n { dst.storeBytes(of: Float(src[i]), toByteOffset: i * 4, as: Float.self) }
        case .f16, .bf16:
            let floats = (0..<n).map { Float(src[$0]) }
            floats.withUnsafeBufferPointer { encode($0, as: dtype, into: destination) }
        }
    }

    /// Decodes a whole little-endian byte buffer into `[Float]`.
    public static func floats(from bytes: UnsafeRawBufferPointer, dtype: DType) -> [Float] {
        let n = bytes.count / dtype.byteWidth
        return [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            decode(bytes, dtype: dtype, into: UnsafeMutableBufferPointer(rebasing: buf[0..<n]))
            initialized = n
        }
    }

    /// Decodes a whole little-endian byte buffer into `[Double]`.
    public static func doubles(from bytes: UnsafeRawBufferPointer, dtype: DType) -> [Double] {
        let n = bytes.count / dtype.byteWidth
        return [Double](unsafeUninitializedCapacity: n) { buf, initialized in
            decode(bytes, dtype: dtype, into: UnsafeMutableBufferPointer(rebasing: buf[0..<n]))
            initialized = n
        }
    }

    /// Encodes values as little-endian bytes of `dtype`.
    public static func bytes(from values: [Float], as dtype: DType) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: values.count * dtype.byteWidth) { buf, initialized in
            values.withUnsafeBufferPointer { encode($0, as: dtype, into: UnsafeMutableRawBufferPointer(buf)) }
            initialized = values.count * dtype.byteWidth
        }
    }

    /// Encodes values as little-endian bytes of `dtype`.
    public static func bytes(from values: [Double], as dtype: DType) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: values.count * dtype.byteWidth) { buf, initialized in
            values.withUnsafeBufferPointer { encode($0, as: dtype, into: UnsafeMutableRawBufferPointer(buf)) }
            initialized = values.count * dtype.byteWidth
        }
    }

    /// The C kernels take `uint16_t*`; mmapped or sliced sources may be odd-aligned, so copy those.
    private static func withAligned16(_ src: UnsafeRawPointer, count: Int, _ body: (UnsafePointer<UInt16>) -> Void) {
        if Int(bitPattern: src) % 2 == 0 {
            body(src.assumingMemoryBound(to: UInt16.self))
        } else {
            let copy = UnsafeMutablePointer<UInt16>.allocate(capacity: count)
            defer { copy.deallocate() }
            UnsafeMutableRawPointer(copy).copyMemory(from: src, byteCount: count * 2)
            body(copy)
        }
    }
}
