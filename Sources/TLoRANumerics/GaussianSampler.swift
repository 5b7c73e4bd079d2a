#if canImport(Glibc)
import Glibc
#endif

/// A seeded stream of standard normal samples: xoshiro256** (seeded through SplitMix64) and
/// Marsaglia's polar method. The same seed gives the same matrix on every run.
struct GaussianSampler {
    private var s: (UInt64, UInt64, UInt64, UInt64)
    private var spare: Double? = nil

    init(seed: UInt64) {
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

    private mutating func next() -> UInt64 {
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

    /// Uniform in (−1, 1), 53 random bits.
    private mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1p-52 - 1
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
