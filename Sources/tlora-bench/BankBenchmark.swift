import TLoRAConvert
import TLoRAModel
import TLoRANumerics

#if canImport(Glibc)
import Glibc
#endif

/// `tlora-bench bank MEMBERS OUT IN RANK SHARED NOISE E`: one module of a synthetic bank, built the
/// way `tlora bank build` builds every module (one "piece" of the scale notes in
/// docs/ARCHITECTURE.md). Member `j` has `B = U₀X_j + noise·G`, `A = Y_jV₀ᵀ + noise·G'` with `U₀`
/// (`OUT × SHARED`) and `V₀` (`IN × SHARED`) shared by all (the planted structure), `X_j`, `Y_j`, `G`,
/// `G'` Gaussian (the noise is relative to the structure's entry scale). Prints the time of each
/// phase, the ranks found, the bank's size against the members', the worst member error and the
/// peak resident memory; the last line is the piece's seconds.
func bankBenchmark(members: Int, out: Int, in inFeatures: Int, rank: Int, shared: Int, noise: Double, bound: Double) throws {
    let t0 = now()
    var state: UInt64 = 0x5EED_BA4C
    func gaussian(_ rows: Int, _ cols: Int, scale: Double) -> Matrix<Double> {
        var m = Matrix<Double>(rows: rows, cols: cols)
        for i in m.storage.indices {
            // Irwin–Hall(4), scaled to unit variance: cheap and good enough for planted data.
            var s = 0.0
            for _ in 0..<4 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                s += Double(state >> 11) / Double(1 << 53)
            }
            m.storage[i] = (s - 2) * 3.0.squareRoot() * scale
        }
        return m
    }
    let u0 = gaussian(out, shared, scale: 1), v0 = gaussian(inFeatures, shared, scale: 1)
    var sources: [BankBuilder.Source] = []
    sources.reserveCapacity(members)
    for j in 0..<members {
        var b = matmul(u0, gaussian(shared, rank, scale: 1 / Double(shared).squareRoot()))
        var a = matmul(gaussian(rank, shared, scale: 1 / Double(shared).squareRoot()), v0, transposeB: true)
        let nb = gaussian(out, rank, scale: noise), na = gaussian(rank, inFeatures, scale: noise)
        for i in b.storage.indices { b.storage[i] += nb.storage[i] }
        for i in a.storage.indices { a.storage[i] += na.storage[i] }
        let module = AdapterModule(name: "model.layers.0.self_attn.q_proj", outFeatures: out, inFeatures: inFeatures, scale: 2,
                                   update: .lowRank(a: StoredTensor(a, dtype: .f32), b: StoredTensor(b, dtype: .f32)))
        sources.append(BankBuilder.Source(name: "m\(j)", adapter: Adapter(modules: [module])))
    }
    let generated = now()
    print("load average \(loadAverage()) before")
    print("generated \(members) members of \(out)x\(inFeatures) r\(rank) (shared \(shared), noise \(noise)) in \(seconds(generated - t0)) s; peak RSS \(peakRSS()) MiB")
    let cpu0 = cpuSeconds()
    let (_, summary) = try BankBuilder.build(sources, options: .init(maxRelativeError: bound))
    let built = now() - generated, builtCPU = cpuSeconds() - cpu0
    // Safe: one module, one cluster.
    let piece = summary.pieces[0]
    for t in piece.timings { print("  \(t.step): \(seconds(t.wall)) s wall, \(seconds(t.cpu)) s CPU") }
    let ratio = Double(piece.parameters) / Double(piece.sourceParameters)
    print("ranks \(piece.ranks[0])x\(piece.ranks[1]); \(piece.parameters) parameters vs the members' \(piece.sourceParameters) (\(seconds(ratio))x); worst member error \(piece.worstError) (bound \(bound))")
    print("piece: \(seconds(built)) s wall, \(seconds(builtCPU)) s CPU; peak RSS \(peakRSS()) MiB; load average \(loadAverage())")
    print(built)
}

func seconds(_ x: Double) -> String { "\((x * 100).rounded() / 100)" }

func cpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// The 1-minute load average, as `uptime` shows it.
func loadAverage() -> String {
    var loads = [Double](repeating: 0, count: 3)
    return getloadavg(&loads, 3) > 0 ? seconds(loads[0]) : "?"
}

/// Peak resident set of this process so far, MiB.
func peakRSS() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) / 1024
}
