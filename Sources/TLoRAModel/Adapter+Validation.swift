import TLoRAIO

/// The shapes of a module's update, enough to check it against its layer without any tensor data.
/// Readers that have only a file header (`tlora inspect`) check these; `Adapter.validate()` checks the
/// same rules on loaded tensors.
public enum UpdateShape: Sendable, Equatable {
    case lowRank(a: [Int], b: [Int])
    case tensorTrain(cores: [[Int]])
    case tuckerSlice(group: String, index: [Int])
    case dense([Int])
    /// TensorGuide: cores `[r, n, m, r']`, the latent's shape and the factor rank.
    case jointTrain(cores: [[Int]], latent: [Int], rank: Int)
    case convTucker(core: [Int], a: [Int], b: [Int])
    case kronecker(w1: FactorShape, w2: FactorShape)
    case hadamard(p1: FactorShape, p2: FactorShape)
    case diagonalLowRank(a: [Int], b: [Int], e: [Int])
    case vera(projections: String, lambdaB: [Int], lambdaD: [Int])
    case featureScale(vector: [Int], axis: FeatureAxis)
}

/// The shapes of a `FactorMatrix`.
public enum FactorShape: Sendable, Equatable {
    case full([Int])
    case lowRank(a: [Int], b: [Int])
    case tucker(core: [Int], a: [Int], b: [Int])
}

/// The shapes of a `ProjectionPair`.
public struct ProjectionShape: Sendable, Equatable {
    public var a: [Int]
    public var b: [Int]

    public init(a: [Int], b: [Int]) {
        self.a = a
        self.b = b
    }
}

/// What a module's shapes are checked against besides its update: the parts every form may carry.
public struct ModuleExtras: Sendable, Equatable {
    public var kernel: [Int]
    public var layout: WeightLayout
    public var doraMagnitude: [Int]?
    public var doraAxis: FeatureAxis
    public var doraEpsilon: Double
    public var biasDelta: [Int]?

    public init(kernel: [Int] = [], layout: WeightLayout = .outIn, doraMagnitude: [Int]? = nil, doraAxis: FeatureAxis = .out,
                doraEpsilon: Double = 0, biasDelta: [Int]? = nil) {
        self.kernel = kernel
        self.layout = layout
        self.doraMagnitude = doraMagnitude
        self.doraAxis = doraAxis
        self.doraEpsilon = doraEpsilon
        self.biasDelta = biasDelta
    }
}

/// The shapes of a Tucker group.
public struct TuckerGroupShape: Sendable, Equatable {
    public var name: String
    public var core: [Int]
    public var factors: [[Int]]
    public var modes: [TuckerMode]

    public init(name: String, core: [Int], factors: [[Int]], modes: [TuckerMode]) {
        self.name = name
        self.core = core
        self.factors = factors
        self.modes = modes
    }

    public var dimensions: [Int] { factors.map { $0.first ?? 0 } }
    public var outFeatures: Int { product(of: .row) }
    public var inFeatures: Int { product(of: .column) }
    public var memberDimensions: [Int] { zip(modes, dimensions).filter { $0.0.role == .member }.map(\.1) }

    private func product(of role: TuckerMode.Role) -> Int {
        CheckedSize.product(zip(modes, dimensions).filter { $0.0.role == role }.map(\.1)) ?? -1
    }
}

/// The structural rules every adapter obeys (docs/FORMAT.md, "Semantic rules").
public enum AdapterRules {
    /// Checks one Tucker group's shapes.
    public static func check(group: TuckerGroupShape) throws {
        func fail(_ problem: String) -> ModelError { ModelError(.shapeMismatch, "Tucker group \(group.name)", problem) }
        guard !group.name.isEmpty else { throw ModelError(.emptyName, "Tucker group", "empty name") }
        let n = group.core.count
        guard n >= 2 else { throw fail("core must have at least 2 modes, got \(group.core)") }
        guard group.factors.count == n, group.modes.count == n else {
            throw fail("core has \(n) modes but there are \(group.factors.count) factors and \(group.modes.count) mode descriptions")
        }
        guard group.core.allSatisfy({ $0 > 0 }) else { throw fail("core has an empty mode: \(group.core)") }
        for k in 0..<n {
            let f = group.factors[k]
            guard f.count == 2, f[1] == group.core[k], f[0] > 0 else {
                throw fail("factor \(k) has shape \(f) but must be [I, \(group.core[k])] with I > 0")
            }
            let mode = group.modes[k]
            if mode.role == .member, !mode.labels.isEmpty, mode.labels.count != f[0] {
                throw fail("mode \(k) (\(mode.name)) has \(mode.labels.count) labels for \(f[0]) members")
            }
        }
        guard group.modes.contains(where: { $0.role == .row }), group.modes.contains(where: { $0.role == .column }) else {
            throw fail("needs at least one row mode and one column mode")
        }
        guard CheckedSize.product(group.dimensions) != nil else { throw fail("dimensions \(group.dimensions) overflow") }
    }

    /// Checks one module's shapes against its `out × in`, the groups and shared projections it may
    /// refer to, and its kernel, DoRA magnitude and bias change.
    public static func check(module name: String, outFeatures: Int, inFeatures: Int, scale: Double,
                             update: UpdateShape, extras: ModuleExtras = ModuleExtras(), groups: [String: TuckerGroupShape],
                             projections: [String: ProjectionShape] = [:]) throws {
        func fail(_ problem: String) -> ModelError { ModelError(.shapeMismatch, name, problem) }
        func fail(_ code: ModelError.Code, _ problem: String) -> ModelError { ModelError(code, name, problem) }
        guard !name.isEmpty else { throw ModelError(.emptyName, "module", "empty module name") }
        guard outFeatures > 0, inFeatures > 0 else { throw fail("ΔW shape \(outFeatures)×\(inFeatures) is empty") }
        guard scale.isFinite else { throw fail(.invalidValue, "scale \(scale) is not finite") }
        let kernelSize = try checkKernel(extras.kernel, inFeatures: inFeatures, layout: extras.layout, fail: fail)
        let channels = inFeatures / kernelSize
        // A Tucker factor spans a kernel's positions: only a convolution has one (§2.3.1).
        let tuckerKernel: Int? = extras.kernel.isEmpty ? nil : kernelSize
        switch update {
        case .lowRank(let a, let b):
            guard a.count == 2, b.count == 2 else { throw fail("low-rank factors must be matrices, got A \(a) and B \(b)") }
            let r = a[0]
            guard r > 0 else { throw fail("rank 0") }
            guard a[1] == inFeatures else { throw fail("A is \(a[0])×\(a[1]) but the layer has \(inFeatures) inputs") }
            guard b == [outFeatures, r] else { throw fail("B is \(b[0])×\(b[1]) but must be \(outFeatures)×\(r) (out × rank of A)") }
        case .tensorTrain(let cores):
            guard !cores.isEmpty else { throw fail("tensor train without cores") }
            let (rowProduct, colProduct) = try checkChain(cores, name: "TT", modes: "m, n", fail: fail)
            guard rowProduct == outFeatures, colProduct == inFeatures else {
                throw fail("TT row modes multiply to \(rowProduct) and column modes to \(colProduct), but ΔW is \(outFeatures)×\(inFeatures)")
            }
        case .tuckerSlice(let groupName, let index):
            guard let group = groups[groupName] else { throw fail(.unknownReference, "refers to Tucker group \(groupName), which does not exist") }
            let memberDims = group.memberDimensions
            guard index.count == memberDims.count else {
                throw fail("slice index \(index) has \(index.count) entries but group \(groupName) has \(memberDims.count) member modes")
            }
            for (i, d) in zip(index, memberDims) where i < 0 || i >= d {
                throw fail("slice index \(index) is outside group \(groupName)'s member sizes \(memberDims)")
            }
            guard group.outFeatures == outFeatures, group.inFeatures == inFeatures else {
                throw fail("group \(groupName) holds \(group.outFeatures)×\(group.inFeatures) slices but the module is \(outFeatures)×\(inFeatures)")
            }
        case .dense(let delta):
            guard delta == [outFeatures, inFeatures] else { throw fail("dense ΔW is \(delta) but must be [\(outFeatures), \(inFeatures)]") }
        case .jointTrain(let cores, let latent, let rank):
            try checkJoint(cores: cores, latent: latent, rank: rank, outFeatures: outFeatures, inFeatures: inFeatures, fail: fail)
        case .convTucker(let core, let a, let b):
            guard !extras.kernel.isEmpty else { throw fail(.invalidForm, "a conv_tucker update needs a convolution (the module has no kernel)") }
            let (rows, cols) = try factorSize(.tucker(core: core, a: a, b: b), kernelSize: tuckerKernel, what: "Tucker factor", fail: fail)
            guard rows == outFeatures, cols == inFeatures else {
                throw fail("Tucker factors make a \(rows)×\(cols) update but ΔW is \(outFeatures)×\(inFeatures)")
            }
        case .kronecker(let w1, let w2):
            if case .tucker = w1 { throw fail(.invalidForm, "the first Kronecker factor cannot carry a Tucker core (the kernel belongs to W2)") }
            let (a, c) = try factorSize(w1, kernelSize: nil, what: "Kronecker factor W1", fail: fail)
            let (b, e) = try factorSize(w2, kernelSize: tuckerKernel, what: "Kronecker factor W2", fail: fail)
            guard let rows = CheckedSize.multiply(a, b), let cols = CheckedSize.multiply(c, e), rows == outFeatures, cols == inFeatures else {
                throw fail("W1 (\(a)×\(c)) ⊗ W2 (\(b)×\(e)) is not \(outFeatures)×\(inFeatures)")
            }
            guard e % kernelSize == 0 else { throw fail("W2 has \(e) columns, not a multiple of the kernel's \(kernelSize) positions") }
        case .hadamard(let p1, let p2):
            for (k, p) in [p1, p2].enumerated() {
                if case .full = p { throw fail(.invalidForm, "Hadamard factor \(k + 1) must be low-rank or Tucker, not a full matrix") }
            }
            // LoHa's two factors are both low-rank or both carry a Tucker core (§2.3, form 8).
            if case .tucker = p1, case .lowRank = p2 { throw fail("the Hadamard factors must have one form, got tucker and low_rank") }
            if case .lowRank = p1, case .tucker = p2 { throw fail("the Hadamard factors must have one form, got low_rank and tucker") }
            for (k, p) in [p1, p2].enumerated() {
                let (rows, cols) = try factorSize(p, kernelSize: tuckerKernel, what: "Hadamard factor \(k + 1)", fail: fail)
                guard rows == outFeatures, cols == inFeatures else {
                    throw fail("Hadamard factor \(k + 1) is \(rows)×\(cols) but ΔW is \(outFeatures)×\(inFeatures)")
                }
            }
        case .diagonalLowRank(let a, let b, let e):
            guard a.count == 2, b.count == 2 else { throw fail("low-rank factors must be matrices, got A \(a) and B \(b)") }
            let r = a[0]
            guard a[1] == inFeatures else { throw fail("A is \(a[0])×\(a[1]) but the layer has \(inFeatures) inputs") }
            guard b == [outFeatures, r] else { throw fail("B is \(b[0])×\(b[1]) but must be \(outFeatures)×\(r) (out × rank of A)") }
            guard e == [r] else { throw fail("the diagonal E has shape \(e) but must be [\(r)] (the rank of A)") }
        case .vera(let pairName, let lambdaB, let lambdaD):
            guard let pair = projections[pairName] else { throw fail(.unknownReference, "refers to projections \(pairName), which do not exist") }
            let r = pair.a[0]
            guard lambdaB == [outFeatures] else { throw fail("λ_b has shape \(lambdaB) but must be [\(outFeatures)]") }
            guard lambdaD == [r] else { throw fail("λ_d has shape \(lambdaD) but the projections \(pairName) have rank \(r)") }
            guard pair.a[1] >= inFeatures, pair.b[0] >= outFeatures else {
                throw fail("projections \(pairName) (A \(pair.a), B \(pair.b)) are smaller than the \(outFeatures)×\(inFeatures) layer")
            }
        case .featureScale(let vector, let axis):
            let n = axis == .out ? outFeatures : channels
            guard vector == [n] else { throw fail("the IA³ vector has shape \(vector) but must be [\(n)] (\(axis == .out ? "output features" : "input channels"))") }
            guard scale == 1 else { throw fail(.invalidValue, "an IA³ rescaling has no scale (got \(scale), must be 1)") }
            guard extras.doraMagnitude == nil, extras.biasDelta == nil else { throw fail(.invalidForm, "an IA³ rescaling cannot carry a DoRA magnitude or a bias change") }
        }
        if let m = extras.doraMagnitude {
            let n = extras.doraAxis == .out ? outFeatures : channels
            guard m == [n] else {
                throw fail("DoRA magnitude has shape \(m) but must be [\(n)] (one per \(extras.doraAxis == .out ? "output feature" : "input channel"))")
            }
            guard extras.doraEpsilon >= 0, extras.doraEpsilon.isFinite else { throw fail(.invalidValue, "DoRA epsilon \(extras.doraEpsilon) must be finite and ≥ 0") }
        } else if extras.doraAxis != .out || extras.doraEpsilon != 0 {
            throw fail(.invalidForm, "DoRA axis or epsilon without a DoRA magnitude")
        }
        if let bias = extras.biasDelta, bias != [outFeatures] {
            throw fail("the bias change has shape \(bias) but must be [\(outFeatures)]")
        }
    }

    /// A convolution's kernel: 1 to 3 sizes ≥ 1 dividing the columns; `out_in` layout. Returns `∏ kernel`.
    static func checkKernel(_ kernel: [Int], inFeatures: Int, layout: WeightLayout, fail: (String) -> ModelError) throws -> Int {
        guard !kernel.isEmpty else { return 1 }
        guard kernel.count <= 3, kernel.allSatisfy({ $0 > 0 }) else { throw fail("kernel \(kernel) must have 1 to 3 sizes ≥ 1") }
        guard layout == .outIn else { throw fail("a convolution's weight is stored out × in × kernel (layout out_in)") }
        guard let k = CheckedSize.product(kernel), inFeatures % k == 0 else {
            throw fail("\(inFeatures) columns are not whole input channels of a \(kernel.map(String.init).joined(separator: "×")) kernel")
        }
        return k
    }

    /// The `rows × cols` of one factor matrix, after checking that its tensors fit together.
    /// `kernelSize` is the layer's `∏ kernel`, nil when the layer has no kernel (then a Tucker factor is refused).
    static func factorSize(_ f: FactorShape, kernelSize: Int?, what: String, fail: (String) -> ModelError) throws -> (Int, Int) {
        switch f {
        case .full(let m):
            guard m.count == 2, m.allSatisfy({ $0 > 0 }) else { throw fail("\(what) must be a non-empty matrix, got \(m)") }
            return (m[0], m[1])
        case .lowRank(let a, let b):
            guard a.count == 2, b.count == 2, a.allSatisfy({ $0 > 0 }), b[0] > 0 else {
                throw fail("\(what): low-rank factors must be non-empty matrices, got \(b) · \(a)")
            }
            guard b[1] == a[0] else { throw fail("\(what): \(b) · \(a) do not chain (rank \(b[1]) vs \(a[0]))") }
            return (b[0], a[1])
        case .tucker(let core, let a, let b):
            guard let kernelSize else { throw fail("\(what): a Tucker core needs a convolution (the module has no kernel)") }
            guard core.count >= 3, core.allSatisfy({ $0 > 0 }) else { throw fail("\(what): Tucker core must be [r1, r2, kernel…], got \(core)") }
            guard a.count == 2, b.count == 2, a[1] > 0, b[0] > 0 else { throw fail("\(what): Tucker factors must be matrices, got \(b) and \(a)") }
            guard b[1] == core[0], a[0] == core[1] else {
                throw fail("\(what): Tucker factors \(b) and \(a) do not match the core \(core) ([rows, r1] and [r2, channels])")
            }
            guard CheckedSize.product(Array(core.dropFirst(2))) == kernelSize else {
                throw fail("\(what): the Tucker core's kernel \(Array(core.dropFirst(2))) does not match the layer's \(kernelSize) kernel positions")
            }
            guard let cols = CheckedSize.multiply(a[1], kernelSize) else { throw fail("\(what): size overflows") }
            return (b[0], cols)
        }
    }

    /// 4-D cores `[r, a, b, r']` that chain: `r_0 = r_d = 1`, each core's first rank the previous
    /// core's last, no empty dimension. Returns the products of the `a` and of the `b` modes
    /// (overflow-checked). `name` and `modes` word the messages ("TT", "m, n").
    static func checkChain(_ cores: [[Int]], name: String, modes: String, fail: (String) -> ModelError) throws -> (Int, Int) {
        var previous = 1
        var first = 1, second = 1
        for (k, core) in cores.enumerated() {
            guard core.count == 4 else { throw fail("\(name) core \(k) must be 4-D [r, \(modes), r'], got \(core)") }
            guard core.allSatisfy({ $0 > 0 }) else { throw fail("\(name) core \(k) has an empty dimension: \(core)") }
            guard core[0] == previous else { throw fail("\(name) core \(k) starts with rank \(core[0]) but the previous core ends with \(previous)") }
            guard let a = CheckedSize.multiply(first, core[1]), let b = CheckedSize.multiply(second, core[2]) else {
                throw fail("\(name) mode sizes overflow")
            }
            first = a
            second = b
            previous = core[3]
        }
        guard previous == 1 else { throw fail("last \(name) core must end with rank 1, got \(previous)") }
        return (first, second)
    }

    /// A joint train's cores chain (`r_0 = r_d = 1`, each core's first rank the previous core's last),
    /// its latent modes multiply to the latent's size and its generated modes to `rank · (in + out)`.
    static func checkJoint(cores: [[Int]], latent: [Int], rank: Int, outFeatures: Int, inFeatures: Int,
                           fail: (String) -> ModelError) throws {
        guard !cores.isEmpty else { throw fail("joint train without cores") }
        guard rank > 0 else { throw fail("joint train with rank \(rank)") }
        guard latent.count == 1 || (latent.count == 2 && latent[0] == 1) else {
            throw fail("joint-train latent must have shape [N] or [1, N], got \(latent)")
        }
        let (latentProduct, generated) = try checkChain(cores, name: "joint-train", modes: "n, m", fail: fail)
        guard CheckedSize.product(latent) == latentProduct else {
            throw fail("joint-train latent modes multiply to \(latentProduct) but the latent holds \(CheckedSize.product(latent) ?? -1) values")
        }
        guard let sides = CheckedSize.add(inFeatures, outFeatures), let needed = CheckedSize.multiply(rank, sides), needed == generated else {
            throw fail("joint-train generated modes multiply to \(generated) but rank \(rank) factors of a \(outFeatures)×\(inFeatures) layer need \(rank) × (\(inFeatures) + \(outFeatures))")
        }
    }

    /// Checks names across the adapter: unique modules, one update per target, one module per slice,
    /// each target replaced at most once. A target may be both replaced and updated: the update then
    /// applies to the replacement (PEFT saves an adapted embedding's base weights this way).
    public static func checkNames(modules: [(name: String, target: String, slice: String?)], replacedTargets: [String], groupNames: [String],
                                  projectionNames: [String] = []) throws {
        var groups = Set<String>()
        for g in groupNames where !groups.insert(g).inserted { throw ModelError(.duplicateName, g, "Tucker group name used twice") }
        var pairs = Set<String>()
        for p in projectionNames {
            guard !p.isEmpty else { throw ModelError(.emptyName, "projections", "empty name") }
            guard pairs.insert(p).inserted else { throw ModelError(.duplicateName, p, "projection pair name used twice") }
        }
        var names = Set<String>(), targets = Set<String>(), slices = Set<String>()
        for m in modules {
            guard names.insert(m.name).inserted else { throw ModelError(.duplicateName, m.name, "module listed twice") }
            guard !m.target.isEmpty else { throw ModelError(.emptyName, m.name, "empty target tensor name") }
            guard targets.insert(m.target).inserted else { throw ModelError(.duplicateName, m.name, "another module already updates \(m.target)") }
            if let s = m.slice, !slices.insert(s).inserted { throw ModelError(.duplicateName, m.name, "another module already uses Tucker slice \(s)") }
        }
        var replaced = Set<String>()
        for t in replacedTargets {
            guard !t.isEmpty else { throw ModelError(.emptyName, "replaced tensor", "empty target name") }
            guard replaced.insert(t).inserted else { throw ModelError(.duplicateName, t, "replaced twice") }
        }
    }
}

extension AdapterRules {
    /// Checks one pair of shared projections: `A` `[r, maxIn]`, `B` `[maxOut, r]`, all ≥ 1.
    public static func check(projections name: String, _ p: ProjectionShape) throws {
        guard p.a.count == 2, p.b.count == 2, p.a.allSatisfy({ $0 > 0 }), p.b.allSatisfy({ $0 > 0 }), p.b[1] == p.a[0] else {
            throw ModelError(.shapeMismatch, "projections \(name)", "A \(p.a) and B \(p.b) must be non-empty [r, in] and [out, r] matrices of one rank")
        }
    }

    /// A replaced tensor that is also a module's target must have the shape the module updates:
    /// `[out, in]` for layout `out_in`, `[in, out]` for `in_out` (docs/FORMAT.md §2.5).
    public static func checkReplacements(modules: [(name: String, target: String, layout: WeightLayout, outFeatures: Int, inFeatures: Int)],
                                         replaced: [(target: String, shape: [Int])]) throws {
        let byTarget = Dictionary(modules.map { ($0.target, $0) }, uniquingKeysWith: { a, _ in a })
        for r in replaced {
            guard let m = byTarget[r.target] else { continue }
            let want = m.layout == .outIn ? [m.outFeatures, m.inFeatures] : [m.inFeatures, m.outFeatures]
            guard r.shape == want else {
                throw ModelError(.shapeMismatch, r.target, "the replacement is \(r.shape) but module \(m.name) updates it as \(want)")
            }
        }
    }
}

extension Adapter {
    /// Checks that every part fits together (`AdapterRules` on the loaded tensors' shapes).
    ///
    /// - Throws: `ModelError` naming the first module, group or tensor at fault.
    public func validate() throws {
        var groups: [String: TuckerGroupShape] = [:]
        for g in tuckerGroups {
            let shape = g.shape
            try AdapterRules.check(group: shape)
            groups[g.name] = shape
        }
        var pairs: [String: ProjectionShape] = [:]
        for p in projections {
            let shape = ProjectionShape(a: p.a.shape, b: p.b.shape)
            try AdapterRules.check(projections: p.name, shape)
            pairs[p.name] = shape
        }
        try AdapterRules.checkNames(modules: modules.map { ($0.name, $0.target, $0.sliceKey) },
                                    replacedTargets: replacedTensors.map(\.target), groupNames: tuckerGroups.map(\.name),
                                    projectionNames: projections.map(\.name))
        for m in modules {
            try AdapterRules.check(module: m.name, outFeatures: m.outFeatures, inFeatures: m.inFeatures, scale: m.scale,
                                   update: m.update.shape, extras: m.extras, groups: groups, projections: pairs)
        }
        try AdapterRules.checkReplacements(modules: modules.map { ($0.name, $0.target, $0.layout, $0.outFeatures, $0.inFeatures) },
                                           replaced: replacedTensors.map { ($0.target, $0.value.shape) })
    }
}

extension ModuleUpdate {
    /// The shapes of this update's tensors.
    public var shape: UpdateShape {
        switch self {
        case .lowRank(let a, let b): return .lowRank(a: a.shape, b: b.shape)
        case .tensorTrain(let tt): return .tensorTrain(cores: tt.cores.map(\.shape))
        case .tuckerSlice(let g, let i): return .tuckerSlice(group: g, index: i)
        case .dense(let d): return .dense(d.shape)
        case .jointTrain(let j): return .jointTrain(cores: j.cores.map(\.shape), latent: j.latent.shape, rank: j.rank)
        case .convTucker(let t): return .convTucker(core: t.core.shape, a: t.a.shape, b: t.b.shape)
        case .kronecker(let k): return .kronecker(w1: k.w1.shape, w2: k.w2.shape)
        case .hadamard(let h): return .hadamard(p1: h.p1.shape, p2: h.p2.shape)
        case .diagonalLowRank(let a, let b, let e): return .diagonalLowRank(a: a.shape, b: b.shape, e: e.shape)
        case .vera(let v): return .vera(projections: v.projections, lambdaB: v.lambdaB.shape, lambdaD: v.lambdaD.shape)
        case .featureScale(let f): return .featureScale(vector: f.vector.shape, axis: f.axis)
        }
    }
}

extension FactorMatrix {
    public var shape: FactorShape {
        switch self {
        case .full(let m): return .full(m.shape)
        case .lowRank(let a, let b): return .lowRank(a: a.shape, b: b.shape)
        case .tucker(let t): return .tucker(core: t.core.shape, a: t.a.shape, b: t.b.shape)
        }
    }
}

extension AdapterModule {
    /// The kernel, layout, DoRA and bias shapes the rules check besides the update.
    public var extras: ModuleExtras {
        ModuleExtras(kernel: kernel, layout: layout, doraMagnitude: doraMagnitude?.shape, doraAxis: doraAxis, doraEpsilon: doraEpsilon,
                     biasDelta: biasDelta?.shape)
    }

    /// "group/i,j" for a Tucker slice, used to check that no two modules share one.
    var sliceKey: String? {
        if case .tuckerSlice(let g, let index) = update { return g + "/" + index.map(String.init).joined(separator: ",") }
        return nil
    }
}

extension TuckerGroup {
    public var shape: TuckerGroupShape {
        TuckerGroupShape(name: name, core: core.shape, factors: factors.map(\.shape), modes: modes)
    }
}
