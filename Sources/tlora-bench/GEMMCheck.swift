import TLoRANumerics

/// `tlora-bench gemmcheck M N K`: multiplies seeded random matrices with the active kernels (and
/// all threads) in f32 and f64, for each of the four transpose combinations, and compares every
/// element with a compensated (twice-the-precision) f64 dot product against the worst-case bound
/// |ĉ − c| ≤ γ_{k+2}·Σ|a||b|. Prints the worst error as a fraction of the bound per case; returns
/// false if any exceeds it. Meant for emulated CPUs (scripts/check-no-avx2.sh), where the test
/// suite is too slow to run.
func gemmCheck(m: Int, n: Int, k: Int) -> Bool {
    let a = randomMatrix(m, k, seed: 11, as: Float.self), b = randomMatrix(k, n, seed: 12, as: Float.self)
    // Reference: products of floats are exact in f64; the sum is compensated (TwoSum).
    var exact = [Double](repeating: 0, count: m * n), magnitude = exact
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0, e = 0.0, mag = 0.0
            for p in 0..<k {
                let prod = Double(a[i, p]) * Double(b[p, j])
                let t = s + prod, z = t - s
                e += (s - (t - z)) + (prod - z)
                s = t
                mag += abs(prod)
            }
            exact[i * n + j] = s + e
            magnitude[i * n + j] = mag
        }
    }
    var ok = true
    func report(_ name: String, _ c: [Double], unitRoundoff u: Double) {
        let gamma = Double(k + 2) * u / (1 - Double(k + 2) * u)
        var worst = 0.0
        for i in 0..<(m * n) {
            let bound = gamma * magnitude[i] + Double(Float.leastNormalMagnitude)
            worst = max(worst, abs(c[i] - exact[i]) / bound)
        }
        if !(worst <= 1) { ok = false }
        print("gemmcheck \(name) \(m)x\(n)x\(k): worst error \(worst) of the bound\(worst <= 1 ? "" : "  FAILED")")
    }
    let a64: Matrix<Double> = a.converted(), b64: Matrix<Double> = b.converted()
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        let name = "ta=\(ta ? 1 : 0) tb=\(tb ? 1 : 0)"
        let c32 = matmul(ta ? a.transposed() : a, tb ? b.transposed() : b, transposeA: ta, transposeB: tb)
        report("f32 " + name, c32.storage.map { Double($0) }, unitRoundoff: Double(Float.unitRoundoff))
        let c64 = matmul(ta ? a64.transposed() : a64, tb ? b64.transposed() : b64, transposeA: ta, transposeB: tb)
        report("f64 " + name, c64.storage, unitRoundoff: Double.unitRoundoff)
    }
    return ok
}
