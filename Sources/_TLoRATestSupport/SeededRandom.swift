import TLoRANumerics

/// The tests' reproducible generator: the library's `Xoshiro256`, so every random test input is the
/// same on every run and machine.
package typealias SeededGenerator = Xoshiro256

extension Xoshiro256 {
    /// A standard normal sample (Box–Muller).
    package mutating func gaussian() -> Double {
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
package enum RandomTensors {
    /// An rows×cols matrix of independent N(0, scale²) entries.
    package static func gaussianMatrix<T: TLoRAFloat>(rows: Int, cols: Int, scale: Double = 1, using g: inout SeededGenerator, as: T.Type = T.self) -> Matrix<T> {
        Matrix(rows: rows, cols: cols, storage: (0..<(rows * cols)).map { _ in T(g.gaussian() * scale) })
    }

    /// A tensor of independent N(0, scale²) entries.
    package static func gaussianTensor<T: TLoRAFloat>(shape: [Int], scale: Double = 1, using g: inout SeededGenerator, as: T.Type = T.self) -> Tensor<T> {
        let n = shape.reduce(1, *)
        return Tensor(shape: shape, storage: (0..<n).map { _ in T(g.gaussian() * scale) })
    }

    /// Raw bytes, uniformly random.
    package static func bytes(_ count: Int, using g: inout SeededGenerator) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &g) }
    }
}
