import Testing
import TLoRANumerics
import _TLoRATestSupport

/// Reshape, permute, unfold/fold and n-mode products against index-by-index references.
@Suite struct TensorAlgebraTests {
    static let shapes: [[Int]] = [[3], [4, 5], [2, 3, 4], [3, 1, 4, 2], [2, 3, 2, 5, 3], [1, 1, 6], [33, 40, 3], [70, 65]]

    /// Row-major strides.
    static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        if shape.count > 1 { for k in stride(from: shape.count - 2, through: 0, by: -1) { s[k] = s[k + 1] * shape[k + 1] } }
        return s
    }

    /// Every multi-index of `shape` in row-major order.
    static func indices(_ shape: [Int]) -> [[Int]] {
        var out: [[Int]] = [[]]
        for e in shape { out = out.flatMap { prefix in (0..<e).map { prefix + [$0] } } }
        return out
    }

    static func permutations(_ n: Int) -> [[Int]] {
        if n <= 1 { return [Array(0..<n)] }
        return permutations(n - 1).flatMap { p in (0...p.count).map { i in var q = p; q.insert(n - 1, at: i); return q } }
    }

    @Test(arguments: shapes)
    func permuteMatchesIndexDefinitionForEveryPermutation(shape: [Int]) {
        var g = SeededGenerator(seed: UInt64(shape.reduce(7, *)))
        let t = RandomTensors.gaussianTensor(shape: shape, using: &g, as: Double.self)
        let st = Self.strides(shape)
        let perms = shape.count <= 4 ? Self.permutations(shape.count) : [[4, 2, 0, 3, 1], [1, 0, 2, 3, 4], [0, 1, 2, 4, 3], [3, 4, 0, 1, 2]]
        for axes in perms {
            let p = t.permuted(axes)
            #expect(p.shape == axes.map { shape[$0] })
            let ps = Self.strides(p.shape)
            var ok = true
            for idx in Self.indices(p.shape) {
                var src = 0
                for (k, a) in axes.enumerated() { src += idx[k] * st[a] }
                var dst = 0
                for k in idx.indices { dst += idx[k] * ps[k] }
                if p.storage[dst] != t.storage[src] { ok = false }
            }
            #expect(ok, "permutation \(axes) of \(shape)")
            // Round trip through the inverse permutation.
            var inverse = [Int](repeating: 0, count: axes.count)
            for (k, a) in axes.enumerated() { inverse[a] = k }
            #expect(p.permuted(inverse) == t)
        }
    }

    @Test(arguments: shapes)
    func unfoldMatchesConventionAndFoldInvertsIt(shape: [Int]) {
        var g = SeededGenerator(seed: UInt64(shape.reduce(3, +)))
        let t = RandomTensors.gaussianTensor(shape: shape, using: &g, as: Float.self)
        let st = Self.strides(shape)
        for n in shape.indices {
            let u = t.unfolded(mode: n)
            #expect(u.rows == shape[n] && u.cols * u.rows == t.count)
            // Column = row-major index of the other indices, in their order (last fastest).
            let others = shape.indices.filter { $0 != n }
            let os = Self.strides(others.map { shape[$0] })
            var ok = true
            for idx in Self.indices(shape) {
                var col = 0
                for (k, axis) in others.enumerated() { col += idx[axis] * os[k] }
                var flat = 0
                for k in idx.indices { flat += idx[k] * st[k] }
                if u[idx[n], col] != t.storage[flat] { ok = false }
            }
            #expect(ok, "mode \(n) of \(shape)")
            #expect(Tensor(folding: u, mode: n, shape: shape) == t)
        }
        // Reshape keeps the row-major order.
        #expect(t.reshaped([t.count]).storage == t.storage)
    }

    @Test(arguments: shapes)
    func modeProductMatchesNaiveLoop(shape: [Int]) {
        var g = SeededGenerator(seed: UInt64(shape.reduce(11, *)))
        let t = RandomTensors.gaussianTensor(shape: shape, using: &g, as: Double.self)
        for n in shape.indices {
            for j in [1, 3, shape[n] + 2] {
                let m = RandomTensors.gaussianMatrix(rows: j, cols: shape[n], using: &g, as: Double.self)
                let p = t.modeProduct(m, mode: n)
                var outShape = shape
                outShape[n] = j
                #expect(p.shape == outShape)
                let st = Self.strides(shape), ps = Self.strides(outShape)
                var worst = 0.0, scale = 0.0
                for idx in Self.indices(outShape) {
                    var s = 0.0
                    for i in 0..<shape[n] {
                        var src = 0
                        for k in idx.indices { src += (k == n ? i : idx[k]) * st[k] }
                        s += m[idx[n], i] * t.storage[src]
                        scale = max(scale, abs(m[idx[n], i] * t.storage[src]))
                    }
                    var dst = 0
                    for k in idx.indices { dst += idx[k] * ps[k] }
                    worst = max(worst, abs(p.storage[dst] - s))
                }
                #expect(worst <= 1e-13 * max(scale, 1) * Double(shape[n]), "mode \(n), J = \(j): \(worst)")
                // (t ×_n m)_(n) = m · t_(n).
                let viaUnfold = matmul(m, t.unfolded(mode: n))
                #expect(Tolerance.relativeError(p.unfolded(mode: n).storage, viaUnfold.storage) <= 1e-14)
            }
        }
    }

    @Test(arguments: [(1, 1), (1, 9), (9, 1), (4, 4), (5, 7), (33, 65), (130, 67)])
    func transposeMatchesIndexDefinition(shape: (Int, Int)) {
        var g = SeededGenerator(seed: UInt64(shape.0 * 1000 + shape.1))
        let d = RandomTensors.gaussianMatrix(rows: shape.0, cols: shape.1, using: &g, as: Double.self)
        let f = RandomTensors.gaussianMatrix(rows: shape.0, cols: shape.1, using: &g, as: Float.self)
        let dt = d.transposed(), ft = f.transposed()
        #expect(dt.rows == shape.1 && dt.cols == shape.0)
        var ok = true
        for i in 0..<shape.0 { for j in 0..<shape.1 where dt[j, i] != d[i, j] || ft[j, i] != f[i, j] { ok = false } }
        #expect(ok)
        #expect(dt.transposed() == d && ft.transposed() == f)
    }

    @Test func normsInnerProductsAndDistances() {
        var g = SeededGenerator(seed: 8)
        let a = RandomTensors.gaussianTensor(shape: [7, 9, 5], using: &g, as: Double.self)
        let b = RandomTensors.gaussianTensor(shape: [7, 9, 5], using: &g, as: Double.self)
        var n2 = 0.0, ip = 0.0, d2 = 0.0
        for i in 0..<a.count { n2 += a.storage[i] * a.storage[i]; ip += a.storage[i] * b.storage[i]; d2 += (a.storage[i] - b.storage[i]) * (a.storage[i] - b.storage[i]) }
        #expect(abs(a.frobeniusNorm - n2.squareRoot()) <= 1e-14 * n2.squareRoot())
        #expect(abs(innerProduct(a, b) - ip) <= 1e-13 * n2)
        #expect(abs(frobeniusDistance(a, b) - d2.squareRoot()) <= 1e-14 * d2.squareRoot())
        // Extreme magnitudes: no overflow or underflow.
        let huge = Tensor<Double>(shape: [3], storage: [3e200, 4e200, 0])
        #expect(abs(huge.frobeniusNorm - 5e200) <= 1e-15 * 5e200)
        let tiny = Tensor<Double>(shape: [2], storage: [3e-200, 4e-200])
        #expect(abs(tiny.frobeniusNorm - 5e-200) <= 1e-15 * 5e-200)
        #expect(abs(frobeniusDistance(huge, Tensor(shape: [3], storage: [0, 0, 0])) - 5e200) <= 1e-15 * 5e200)
        #expect(Tensor<Float>(shape: [0], storage: []).frobeniusNorm == 0)
        let f = Tensor<Float>(shape: [2, 2], storage: [1, 2, 2, 4])
        #expect(f.frobeniusNorm == 5)
        #expect(frobeniusNorm([3e-170, 4e-170]) > 0)
    }
}
