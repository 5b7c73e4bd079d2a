#if canImport(Glibc)
import Glibc
#endif

/// A seeded stream of standard normal samples: `Xoshiro256` and Marsaglia's polar method. The
/// same seed gives the same matrix on every run.
struct GaussianSampler {
    private var generator: Xoshiro256
    private var spare: Double? = nil

    init(seed: UInt64) { generator = Xoshiro256(seed: seed) }

    /// Uniform in (−1, 1), 53 random bits.
    private mutating func uniform() -> Double {
        Double(generator.next() >> 11) * 0x1p-52 - 1
    }

    mutating func gaussian() -> Double {
        if let v = spare { spare = nil; return v }
        while true {
            let u = uniform(), v = uniform()
            let r = u * u + v * v
            if r > 0 && r < 1 {
                let f = (-2 * log(r) / r).squareRoot()
                spare = v * f
                return u * f
            }
        }
    }

    /// A rows × cols matrix of independent N(0, 1) entries.
    mutating func matrix(rows: Int, cols: Int) -> Matrix<Double> {
        var m = Matrix<Double>(rows: rows, cols: cols)
        for i in m.storage.indices { m.storage[i] = gaussian() }
        return m
    }
}
