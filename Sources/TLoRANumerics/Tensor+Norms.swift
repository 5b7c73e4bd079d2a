import CTLoRAKernels

/// Frobenius norms, inner products and distances of tensors and matrices, accumulated in f64
/// straight from the storage (no temporaries).
///
/// Fast path: one pass of plain sums of squares (AVX2 dot kernel for f64). When that overflows,
/// underflows or lands in the subnormal range, a second, scaled pass (LAPACK dnrm2's idea) gives
/// the norm to full precision. Error: |computed − exact| ≤ (count·u)·exact (u = 2⁻⁵³).
enum Norms {
    // Each entry point dispatches once on the scalar type to concrete loops, so callers in other
    // modules (which reach these through unspecialized generics) do not pay per element.
    static func norm<T: TLoRAFloat>(_ x: UnsafeBufferPointer<T>) -> Double {
        guard let base = x.baseAddress, x.count > 0 else { return 0 }
        if T.self == Double.self { return norm(UnsafeBufferPointer(start: UnsafeRawPointer(base).assumingMemoryBound(to: Double.self), count: x.count)) }
        if T.self == Float.self { return norm(UnsafeBufferPointer(start: UnsafeRawPointer(base).assumingMemoryBound(to: Float.self), count: x.count)) }
        let wide = x.map { Double($0) }
        return wide.withUnsafeBufferPointer { norm($0) }
    }

    static func norm(_ x: ArraySlice<Double>) -> Double {
        x.isEmpty ? 0 : x.withUnsafeBufferPointer { norm($0) }
    }

    static func norm(_ x: UnsafeBufferPointer<Double>) -> Double {
        // Safe: callers pass non-empty buffers.
        let s = tlora_ddot(x.baseAddress!, x.baseAddress!, x.count)
        if s.isFinite && s >= 0x1p-960 { return s.squareRoot() }
        return scaledNorm(x.count) { Double(x[$0]) }
    }

    static func norm(_ x: UnsafeBufferPointer<Float>) -> Double {
        var s = 0.0
        for v in x { let d = Double(v); s += d * d }
        if s.isFinite && s >= 0x1p-960 { return s.squareRoot() }
        return scaledNorm(x.count) { Double(x[$0]) }
    }

    /// LAPACK dnrm2's scaled sum, for the rare out-of-range cases.
    @inline(__always)
    static func scaledNorm(_ count: Int, _ value: (Int) -> Double) -> Double {
        var scale = 0.0, sum = 1.0
        for i in 0..<count {
            let a = abs(value(i))
            if a == 0 { continue }
            if scale < a {
                sum = 1 + sum * (scale / a) * (scale / a)
                scale = a
            } else {
                sum += (a / scale) * (a / scale)
            }
        }
        return scale * sum.squareRoot()
    }

    static func dot<T: TLoRAFloat>(_ x: UnsafeBufferPointer<T>, _ y: UnsafeBufferPointer<T>) -> Double {
        precondition(x.count == y.count, "inner product of \(x.count) and \(y.count) elements")
        guard let a = x.baseAddress, let b = y.baseAddress, x.count > 0 else { return 0 }
        if T.self == Double.self {
            return tlora_ddot(UnsafeRawPointer(a).assumingMemoryBound(to: Double.self), UnsafeRawPointer(b).assumingMemoryBound(to: Double.self), x.count)
        }
        if T.self == Float.self {
            let p = UnsafeRawPointer(a).assumingMemoryBound(to: Float.self), q = UnsafeRawPointer(b).assumingMemoryBound(to: Float.self)
            var s = 0.0
            for i in 0..<x.count { s += Double(p[i]) * Double(q[i]) }
            return s
        }
        var s = 0.0
        for i in 0..<x.count { s += Double(x[i]) * Double(y[i]) }
        return s
    }

    static func distance<T: TLoRAFloat>(_ x: UnsafeBufferPointer<T>, _ y: UnsafeBufferPointer<T>) -> Double {
        precondition(x.count == y.count, "distance between \(x.count) and \(y.count) elements")
        guard let a = x.baseAddress, let b = y.baseAddress, x.count > 0 else { return 0 }
        if T.self == Double.self {
            return distance(UnsafeRawPointer(a).assumingMemoryBound(to: Double.self), UnsafeRawPointer(b).assumingMemoryBound(to: Double.self), x.count)
        }
        if T.self == Float.self {
            return distance(UnsafeRawPointer(a).assumingMemoryBound(to: Float.self), UnsafeRawPointer(b).assumingMemoryBound(to: Float.self), x.count)
        }
        let dx = x.map { Double($0) }, dy = y.map { Double($0) }
        return dx.withUnsafeBufferPointer { p in dy.withUnsafeBufferPointer { q in distance(p.baseAddress!, q.baseAddress!, x.count) } }  // safe: count > 0
    }

    @_specialize(where T == Double)
    @_specialize(where T == Float)
    static func distance<T: BinaryFloatingPoint>(_ x: UnsafePointer<T>, _ y: UnsafePointer<T>, _ count: Int) -> Double {
        var s = 0.0, big = 0.0
        for i in 0..<count {
            let d = Double(x[i]) - Double(y[i])
            s += d * d
            big = max(big, abs(d))
        }
        if s.isFinite && (s >= 0x1p-960 || big == 0) { return s.squareRoot() }
        // Rescaled second pass for extreme magnitudes.
        var t = 0.0
        for i in 0..<count { let d = (Double(x[i]) - Double(y[i])) / big; t += d * d }
        return big * t.squareRoot()
    }
}

extension Tensor {
    /// ‖self‖_F = √(Σ x²), accumulated in f64.
    public var frobeniusNorm: Double { storage.withUnsafeBufferPointer { Norms.norm($0) } }
}

extension Matrix {
    /// ‖self‖_F = √(Σ x²), accumulated in f64.
    public var frobeniusNorm: Double { storage.withUnsafeBufferPointer { Norms.norm($0) } }
}

/// ⟨a, b⟩ = Σ a_i b_i over tensors of the same shape, accumulated in f64.
public func innerProduct<T: TLoRAFloat>(_ a: Tensor<T>, _ b: Tensor<T>) -> Double {
    precondition(a.shape == b.shape, "innerProduct: shapes \(a.shape) and \(b.shape) differ")
    return a.storage.withUnsafeBufferPointer { x in b.storage.withUnsafeBufferPointer { y in Norms.dot(x, y) } }
}

/// ‖a − b‖_F for tensors of the same shape, without forming a − b.
public func frobeniusDistance<T: TLoRAFloat>(_ a: Tensor<T>, _ b: Tensor<T>) -> Double {
    precondition(a.shape == b.shape, "frobeniusDistance: shapes \(a.shape) and \(b.shape) differ")
    return a.storage.withUnsafeBufferPointer { x in b.storage.withUnsafeBufferPointer { y in Norms.distance(x, y) } }
}

/// ‖x‖_F of a flat array of values, accumulated in f64 (overflow- and underflow-safe).
public func frobeniusNorm<T: TLoRAFloat>(_ values: [T]) -> Double {
    values.withUnsafeBufferPointer { Norms.norm($0) }
}
