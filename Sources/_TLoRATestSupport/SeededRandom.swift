import TLoRANumerics

/// A small, fast, reproducible generator (xoshiro256**, seeded through SplitMix64) so every random
/// test input is the same on every run and machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// A standard normal sample (Box–Muller).
    public mutating func gaussian() -> Double {
        var u1 = Double.random(in: 0..<1, using: &self)
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = Double.random(in: 0..<1, using: &self)
        return (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
    }
}

@inline(__always) private func _log(_ x: Double) -> Double {
    // log via frexp-free series is overkill; Foundation-free builds still have the C math library.
    return TLoRATestMath.log(x)
}
@inline(__always) private func _cos(_ x: Double) -> Double { TLoRATestMath.cos(x) }

/// Random tensors and matrices for tests.
public enum RandomTensors {
    /// An rows×cols matrix of independent N(0, scale²) entries.
    public static func gaussianMatrix<T: TLoRAFloat>(rows: Int, cols: Int, scale: Double = 1, using g: inout SeededGenerator, as: T.Type = T.self) -> Matrix<T> {
        Matrix(rows: rows, cols: cols, storage: (0..<(rows * cols)).map { _ in T(g.gaussian() * scale) })
    }

    /// A tensor of independent N(0, scale²) entries.
    public static func gaussianTensor<T: TLoRAFloat>(shape: [Int], scale: Double = 1, using g: inout SeededGenerator, as: T.Type = T.self) -> Tensor<T> {
        let n = shape.reduce(1, *)
        return Tensor(shape: shape, storage: (0..<n).map { _ in T(g.gaussian() * scale) })
    }

    /// Raw bytes, uniformly random.
    public static func bytes(_ count: Int, using g: inout SeededGenerator) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &g) }
    }
}
