import TLoRAIO
import TLoRAModel
import TLoRANumerics

/// `tlora convert dense-to-tt`: every module's update as a tensor train.
public enum DenseToTT {
    public enum Layout: String, Sendable, CaseIterable {
        /// Row modes, then column modes (TT-LoRA); the middle bond is at most the LoRA rank.
        case rowsThenColumns = "rows-cols"
        /// Interleaved TT-matrix: every core carries one row and one column mode.
        case interleaved = "matrix"
    }

    public struct Options: Sendable {
        public var target: ConversionTarget
        public var layout: Layout
        /// Fixed modes for every module (must multiply to out and in); nil = automatic per module.
        public var modes: TTModes?
        /// Largest automatic mode size.
        public var maxMode: Int
        /// Storage dtype of the cores.
        public var dtype: DType
        /// TensorGuide's joint train of both factors (`JointTT`) instead of a train of `ΔW`.
        public var joint: Bool
        /// Hears (modules done, modules) as modules finish, from any thread.
        public var progress: (@Sendable (Int, Int) -> Void)?

        public init(target: ConversionTarget, layout: Layout = .rowsThenColumns, modes: TTModes? = nil, maxMode: Int = 16, dtype: DType = .f32,
                    joint: Bool = false) {
            self.target = target
            self.layout = layout
            self.modes = modes
            self.maxMode = maxMode
            self.dtype = dtype
            self.joint = joint
        }
    }

    /// Converts every module (in parallel); DoRA magnitudes and replaced tensors are kept.
    public static func convert(_ adapter: Adapter, options: Options) throws -> (Adapter, ConversionSummary) {
        let counter = ProgressCounter(total: adapter.modules.count, report: options.progress)
        let results = try Parallel.map(count: adapter.modules.count) { i in
            defer { counter.advance() }
            return try convert(adapter.modules[i], in: adapter, options: options)
        }
        var out = adapter
        out.modules = results.map(\.0)
        // Tucker groups whose every member became a train are no longer referenced.
        out.tuckerGroups = adapter.tuckerGroups.filter { g in out.modules.contains { if case .tuckerSlice(let n, _) = $0.update { return n == g.name }; return false } }
        out.projections = adapter.projections.filter { p in out.modules.contains { if case .vera(let v) = $0.update { return v.projections == p.name }; return false } }
        out.metadata["conversion"] = options.joint ? "dense-to-tt --joint" : "dense-to-tt"
        var summary = ConversionSummary(lines: results.map(\.1))
        summary.sharedSourceParameters = ConversionSummary.replacedGroupParameters(source: adapter, result: out)
        return (out, summary)
    }

    /// One module. The guarantee: ‖ΔW − ΔŴ‖_F ≤ E‖ΔW‖_F, with δ = E/√(d−1)·‖ΔW‖ per bond
    /// (Oseledets 2011, Thm 2.2), checked afterwards on the stored (rounded) cores.
    static func convert(_ m: AdapterModule, in adapter: Adapter, options: Options) throws -> (AdapterModule, ConversionSummary.Line) {
        if options.joint {
            let r = try JointTT.convert(m, in: adapter, options: options)
            return (r.module, r.line)
        }
        let modes = try options.modes ?? TTModes.automatic(out: m.outFeatures, in: m.inFeatures, maxMode: options.maxMode)
        guard modes.rows.reduce(1, *) == m.outFeatures, modes.columns.reduce(1, *) == m.inFeatures else {
            throw ConvertError(.shapeMismatch, "module \(m.name): modes \(modes) do not multiply to its \(m.outFeatures)×\(m.inFeatures)")
        }
        let source = try LowRankForm.of(m, in: adapter)
        let e = options.target.maxRelativeError ?? 0
        var cores: TTCores
        var note: String
        switch (options.layout, source) {
        case (.rowsThenColumns, .some(let f)):
            cores = TTCores.exact(f, modes: modes)
            let d = cores.cores.count
            // `exact` leaves the train centered on its last row core.
            _ = cores.roundFromCenter(max(modes.rows.count - 1, 0), tolerance: { norm in d > 1 ? e / Double(d - 1).squareRoot() * norm : 0 },
                                      maxRank: options.target.maxRank)
            note = "from factors"
        case (.rowsThenColumns, .none):
            let dense = try DenseDelta.unscaled(m, in: adapter)
            let padded = TTModes(rows: modes.rows + Array(repeating: 1, count: modes.columns.count), columns: Array(repeating: 1, count: modes.rows.count) + modes.columns)
            let d = padded.rows.count
            cores = TTCores.fromDense(dense, modes: padded, tolerance: { norm in d > 1 ? e / Double(d - 1).squareRoot() * norm : 0 }, maxRank: options.target.maxRank).0
            note = "dense fallback: the update has no low-rank factors"
        case (.interleaved, _):
            let dense = try DenseDelta.unscaled(m, in: adapter)
            let padded = modes.padded()
            let d = padded.rows.count
            cores = TTCores.fromDense(dense, modes: padded, tolerance: { norm in d > 1 ? e / Double(d - 1).squareRoot() * norm : 0 }, maxRank: options.target.maxRank).0
            note = "dense fallback: the TT-matrix layout has no factored construction"
        }
        let stored = TensorTrain(cores: cores.cores.map { StoredTensor($0.storage, shape: $0.shape, dtype: options.dtype) })
        var result = m
        result.update = .tensorTrain(stored)
        let error = try relativeError(source: m, result: result, in: adapter)
        try checkBound(error, e: options.target.maxRelativeError, module: m.name, dtype: options.dtype)
        result.conversion = ConversionRecord(method: "tt-svd", maxRelativeError: options.target.maxRelativeError, relativeError: error,
                                             sourceParameters: adapter.parameterCount(of: m), note: note)
        let line = ConversionSummary.Line(name: m.name, form: UpdateKind.tensorTrain.rawValue, ranks: Array(stored.ranks.dropFirst().dropLast()),
                                          sourceParameters: adapter.parameterCount(of: m), parameters: stored.parameterCount,
                                          bound: options.target.maxRelativeError, relativeError: error, note: note)
        return (result, line)
    }

    /// ‖ΔW_source − ΔW_result‖ / ‖ΔW_source‖ from factors when both have them, densely otherwise.
    static func relativeError(source: AdapterModule, result: AdapterModule, in adapter: Adapter) throws -> Double {
        let x = try LowRankForm.orDense(source, in: adapter)
        var resultAdapter = adapter
        resultAdapter.modules = [result]
        let y = try LowRankForm.orDense(result, in: resultAdapter)
        let norm = ErrorMeasure.norm(x, scale: source.scale)
        let diff = ErrorMeasure.differenceNorm(x, scale: source.scale, y, scale: result.scale)
        return norm > 0 ? diff / norm : diff
    }

    /// Refuses a result whose measured error exceeds the bound (possible only through the rounding
    /// of the stored dtype).
    static func checkBound(_ error: Double, e: Double?, module: String, dtype: DType) throws {
        guard let e else { return }
        // Allow the f64 arithmetic's own noise above a lossless target.
        let slack = e == 0 ? 1e-12 : e * 1e-9
        if error > e + slack && !(e == 0 && dtype != .f64) {
            // The algorithm meets the bound in f64 arithmetic; only the rounding of the stored
            // result can break it.
            let advice = dtype == .f64 ? "the bound is at the limit of f64 arithmetic; relax it"
                : "rounding the result to \(dtype.rawValue) costs that much; store it as f64 (--dtype f64) or relax the bound"
            throw ConvertError(.errorBoundExceeded, "\(module): measured error \(error) exceeds --max-rel-error \(e) after storing as \(dtype.rawValue): \(advice)")
        }
    }
}

