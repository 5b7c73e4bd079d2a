/// The secular equation of a diagonal-plus-rank-one eigenproblem, the core of both divide-and-conquer
/// merges:
///
///     f(λ) = c0 + Σ_i w_i / (p_i − λ) = 0,    p_0 < p_1 < … < p_{K−1},  w_i > 0,  c0 > 0,
///
/// whose K roots interlace the poles (λ_j ∈ (p_j, p_{j+1}), λ_{K−1} ∈ (p_{K−1}, p_{K−1} + Σw/c0)).
/// For `D + ρzzᵀ` the poles are `d_i`, `w_i = z_i²`, `c0 = 1/ρ`; for the SVD of `[z; diag(d)]`
/// (d_0 = 0) they are the squares `d_i²` with `c0 = 1` — and the differences `p_i − p_o` are then
/// formed as `(d_i − d_o)(d_i + d_o)`, never by subtracting squares.
///
/// Each root is found relative to its nearer pole (the "origin" o, chosen by the sign of f at the
/// interval's midpoint), so the differences `p_i − λ_j` that the eigenvectors need are available to
/// full relative accuracy as `(p_i − p_o) − μ_j` (Li 1993; LAPACK's dlaed4/dlasd4 follow the same
/// idea). The iteration is the "middle way" rational model of the two poles around the root, kept
/// inside a bracket that shrinks with every evaluation and falls back to Newton and then bisection,
/// so it always terminates.
struct SecularEquation {
    let count: Int
    let c0: Double
    /// z_i², all > 0.
    let weights: [Double]
    /// The d_i (not squared), strictly increasing.
    let d: [Double]
    /// Poles are d_i² (SVD) instead of d_i (eigenproblem).
    let squared: Bool

    /// p_i − p_o, accurate.
    @inline(__always) func poleDifference(_ i: Int, _ o: Int) -> Double {
        squared ? (d[i] - d[o]) * (d[i] + d[o]) : d[i] - d[o]
    }

    /// Root j as (origin o, μ): λ_j = p_o + μ. On return `delta[i] = (p_i − p_o) − μ = p_i − λ_j`.
    func solve(_ j: Int, delta: UnsafeMutablePointer<Double>) -> (origin: Int, mu: Double) {
        let k = count
        if k == 1 {
            let mu = weights[0] / c0
            delta[0] = -mu
            return (0, mu)
        }
        let last = j == k - 1
        var origin: Int
        var lo: Double, hi: Double
        if !last {
            for i in 0..<k { delta[i] = poleDifference(i, j) }
            let mid = delta[j + 1] / 2
            var f = c0
            for i in 0..<k { f += weights[i] / (delta[i] - mid) }
            if f >= 0 {
                origin = j; lo = 0; hi = mid
            } else {
                origin = j + 1
                for i in 0..<k { delta[i] = poleDifference(i, j + 1) }
                lo = delta[j] / 2; hi = 0
            }
        } else {
            origin = k - 1
            for i in 0..<k { delta[i] = poleDifference(i, k - 1) }
            var total = 0.0
            for i in 0..<k { total += weights[i] }
            lo = 0; hi = total / c0
        }
        // The two poles the model keeps: the ones bracketing the root (for the last root, the last two).
        let pa = last ? k - 2 : j, pb = last ? k - 1 : j + 1
        // Split for ψ (left group) and φ (right group): indices ≤ split go left.
        let split = last ? k - 2 : j
        // Initial guess: the two-pole model with the other terms frozen at the bracket's far end.
        let freeze = origin == pa && !last ? hi : (last ? hi / 2 : lo)
        var cFrozen = c0
        for i in 0..<k where i != pa && i != pb { cFrozen += weights[i] / (delta[i] - freeze) }
        var mu = Self.twoPoleRoot(c: cFrozen, a: delta[pa], wa: weights[pa], b: delta[pb], wb: weights[pb], lo: lo, hi: hi) ?? (lo + hi) / 2
        if !(mu > lo && mu < hi) { mu = (lo + hi) / 2 }
        let eps = Double.ulpOfOne
        for _ in 0..<120 {
            var psi = 0.0, dpsi = 0.0, phi = 0.0, dphi = 0.0, err = 0.0
            for i in 0...split {
                let t = weights[i] / (delta[i] - mu)
                psi += t
                dpsi += t / (delta[i] - mu)
                err += abs(psi)
            }
            var i = k - 1
            while i > split {
                let t = weights[i] / (delta[i] - mu)
                phi += t
                dphi += t / (delta[i] - mu)
                err += abs(phi)
                i -= 1
            }
            let g = c0 + psi + phi
            // Running bound on the rounding error of g (each term and each partial sum).
            let bound = eps * (8 * (abs(psi) + abs(phi)) + err + 2 * c0)
            if g == 0 || abs(g) <= bound { break }
            if g < 0 { lo = mu } else { hi = mu }
            if hi - lo <= 2 * eps * max(abs(lo), abs(hi)) { break }
            // Middle way: g ≈ c + s/(Δa − x) + S/(Δb − x) matching g and both groups' derivatives.
            let da = delta[pa] - mu, db = delta[pb] - mu
            // (pa carries the left group ψ, pb the right group φ, for the last root as well.)
            let s = da * da * dpsi, sb = db * db * dphi
            let c = g - da * dpsi - db * dphi
            var next: Double? = nil
            if let x = Self.twoPoleRoot(c: c, a: da, wa: s, b: db, wb: sb, lo: lo - mu, hi: hi - mu) { next = mu + x }
            if next == nil || !(next! > lo && next! < hi) {
                let x = -g / (dpsi + dphi)  // Newton
                next = mu + x > lo && mu + x < hi ? mu + x : (lo + hi) / 2
            }
            let step = next! - mu  // safe: assigned on every path above
            mu = next!
            if abs(step) <= 2 * eps * abs(mu) { break }
        }
        for i in 0..<k { delta[i] -= mu }
        return (origin, mu)
    }

    /// The root in (lo, hi) of c + wa/(a − x) + wb/(b − x) = 0, i.e. of
    /// c·x² − (c(a+b) + wa + wb)·x + (c·ab + wa·b + wb·a) = 0, computed without cancellation.
    static func twoPoleRoot(c: Double, a: Double, wa: Double, b: Double, wb: Double, lo: Double, hi: Double) -> Double? {
        let qa = c, qb = -(c * (a + b) + wa + wb), qc = c * a * b + wa * b + wb * a
        var roots: [Double] = []
        if qa == 0 {
            if qb != 0 { roots.append(-qc / qb) }
        } else {
            let disc = max(qb * qb - 4 * qa * qc, 0).squareRoot()
            let q = -(qb + (qb >= 0 ? disc : -disc)) / 2
            roots.append(q / qa)
            if q != 0 { roots.append(qc / q) }
        }
        return roots.first { $0 > lo && $0 < hi && $0.isFinite }
    }

    /// Gu–Eisenstat: the weights ẑ_i² for which the computed roots are exact,
    ///
    ///     ẑ_i² = c0 · (λ_{K−1} − p_i) · Π_{j<i} (λ_j − p_i)/(p_j − p_i) · Π_{i≤j<K−1} (λ_j − p_i)/(p_{j+1} − p_i),
    ///
    /// from the accurate differences `delta[j * K + i] = p_i − λ_j`. Vectors built from ẑ are
    /// numerically orthogonal however close the roots are (Gu & Eisenstat 1994/95).
    func correctedWeights(delta: UnsafePointer<Double>, parallelChunk: Int = .max) -> [Double] {
        let k = count
        var z = [Double](repeating: 0, count: k)
        z.withUnsafeMutableBufferPointer { zp in
            let Z = zp.baseAddress!  // safe: count ≥ 1
            Parallel.forEachRange(k, minimum: parallelChunk) { range in
                for i in range {
                    var prod = c0 * -delta[(k - 1) * k + i]
                    for j in 0..<i { prod *= -delta[j * k + i] / poleDifference(j, i) }
                    if i < k - 1 { for j in i..<(k - 1) { prod *= -delta[j * k + i] / poleDifference(j + 1, i) } }
                    Z[i] = abs(prod).squareRoot()
                }
            }
        }
        return z
    }
}
