import TLoRAIO
import TLoRAModel
import TLoRANumerics

extension ContainerHeader {
    /// Parses and validates the preamble and header of a `.tlora` file held in `file` (at least the
    /// first `32 + H + 8` bytes; `fileSize` is the real size on disk). Touches no blob data.
    ///
    /// - Throws: `FormatError` naming `path` and the first rule broken.
    static func parse(_ file: UnsafeRawBufferPointer, fileSize: Int, path: String) throws -> ContainerHeader {
        guard file.count >= ContainerLayout.magic.count, file.prefix(ContainerLayout.magic.count).elementsEqual(ContainerLayout.magic) else {
            throw FormatError.notATLoRAFile(path: path)
        }
        var reader = ByteReader(file)
        _ = reader.skip(ContainerLayout.magic.count)
        guard let major = reader.readInteger(as: UInt16.self), let minor = reader.readInteger(as: UInt16.self),
              let flags = reader.readInteger(as: UInt32.self), let rawHeaderLength = reader.readInteger(as: UInt64.self),
              let rawFileLength = reader.readInteger(as: UInt64.self)
        else {
            throw FormatError.truncated(path: path, what: "the preamble", needed: ContainerLayout.preambleLength, available: file.count)
        }
        guard Int(major) == ContainerLayout.majorVersion else {
            if Int(major) > ContainerLayout.majorVersion {
                throw FormatError.unsupportedVersion(path: path, major: Int(major), minor: Int(minor), highestSupported: ContainerLayout.majorVersion)
            }
            throw FormatError.invalidHeader(path: path, problem: "major version \(major) does not exist")
        }
        guard flags == 0 else { throw FormatError.invalidHeader(path: path, problem: "preamble flags 0x\(String(flags, radix: 16)) are not zero") }
        guard let headerLength = Int(exactly: rawHeaderLength), headerLength <= ContainerLayout.maxHeaderLength else {
            throw FormatError.headerTooLarge(path: path, length: Int(clamping: rawHeaderLength), limit: ContainerLayout.maxHeaderLength)
        }
        guard headerLength >= 2 else { throw FormatError.invalidHeader(path: path, problem: "header length \(headerLength) is too short") }
        guard let fileLength = Int(exactly: rawFileLength), fileLength == fileSize else {
            throw FormatError.fileLengthMismatch(path: path, declared: Int(clamping: rawFileLength), actual: fileSize)
        }
        // Safe: headerLength ≤ 64 MiB, so these sums cannot overflow.
        let checksumOffset = ContainerLayout.preambleLength + headerLength
        let headerEnd = checksumOffset + ContainerLayout.headerChecksumLength
        guard headerEnd <= file.count else {
            throw FormatError.truncated(path: path, what: "the header", needed: headerEnd, available: file.count)
        }
        let stored = UInt64(littleEndian: file.loadUnaligned(fromByteOffset: checksumOffset, as: UInt64.self))
        guard XXH64.hash(UnsafeRawBufferPointer(rebasing: file[0..<checksumOffset])) == stored else {
            throw FormatError.headerChecksumMismatch(path: path)
        }
        guard let dataStart = ContainerLayout.dataStart(headerLength: headerLength), dataStart <= fileLength else {
            throw FormatError.truncated(path: path, what: "the header padding", needed: ContainerLayout.dataStart(headerLength: headerLength) ?? Int.max, available: fileLength)
        }

        let json: JSONValue
        do {
            json = try JSONParser.parse(UnsafeRawBufferPointer(rebasing: file[ContainerLayout.preambleLength..<checksumOffset]))
        } catch {
            throw FormatError.invalidHeader(path: path, problem: error.description)
        }
        do {
            var header = try parseDocument(json, major: Int(major), minor: Int(minor), path: path)
            header.dataStart = dataStart
            header.fileLength = fileLength
            header.headerLength = headerLength
            try header.checkLayout(path: path)
            try header.checkSemantics(path: path)
            return header
        } catch let p as JSONFields.Problem {
            throw FormatError.invalidHeader(path: path, problem: p.description)
        }
    }

    private static func parseDocument(_ json: JSONValue, major: Int, minor: Int, path: String) throws -> ContainerHeader {
        let root = try JSONFields(json, path: "")
        guard try root.string("format") == "tlora" else { throw root.problem("format", "must be \"tlora\"") }
        let version = try root.string("version")
        guard version == "\(major).\(minor)" else { throw root.problem("version", "\"\(version)\" does not match the preamble's \(major).\(minor)") }
        let required = try root.isPresent("required_features") ? root.stringArray("required_features") : []
        let unknown = required.filter { !ContainerLayout.knownFeatures.contains($0) }
        guard unknown.isEmpty else { throw FormatError.unknownRequiredFeatures(path: path, features: unknown) }
        // One spelling per feature list (§2.1): sorted by code point, no repeats.
        guard zip(required, required.dropFirst()).allSatisfy({ $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }) else {
            throw root.problem("required_features", "must be sorted (by code point) without repeats")
        }

        let metadata = AdapterMetadata(try root.isPresent("metadata") ? root.stringMap("metadata") : [])
        let tensors = try root.objects("tensors").map(parseTensor)
        let modules = try root.isPresent("modules") ? root.objects("modules").map(parseModule) : []
        let groups = try root.isPresent("tucker_groups") ? root.objects("tucker_groups").map(parseGroup) : []
        let replaced = try root.isPresent("replaced_tensors") ? root.objects("replaced_tensors").map(parseReplaced) : []
        let projections = try root.isPresent("projections") ? root.objects("projections").map { f in
            ProjectionRecord(name: try parseName(f, "name"), a: try parseName(f, "a"), b: try parseName(f, "b"))
        } : []
        let bank = try root.optionalObject("bank").map(parseBank)

        var header = ContainerHeader(majorVersion: major, minorVersion: minor, requiredFeatures: required, metadata: metadata,
                                     tensors: tensors, modules: modules, tuckerGroups: groups, replaced: replaced, bank: bank,
                                     dataStart: 0, fileLength: 0, headerLength: 0)
        header.projections = projections
        for (i, t) in tensors.enumerated() {
            guard header.tensorIndex[t.name] == nil else { throw JSONFields.Problem(path: "tensors[\(i)].name", message: "\"\(t.name)\" is listed twice") }
            header.tensorIndex[t.name] = i
        }
        return header
    }

    private static func parseReplaced(_ f: JSONFields) throws -> ReplacedRecord {
        ReplacedRecord(target: try parseName(f, "target"), tensor: try parseName(f, "tensor"), sourceName: try f.optionalString("source_name"))
    }

    /// The `bank` object (§2.8): bases, then members, each member a name, metadata and module entries.
    private static func parseBank(_ f: JSONFields) throws -> BankRecord {
        let bases = try f.objects("bases").map { b in
            BankRecord.Basis(name: try parseName(b, "name"), module: try parseName(b, "module"), cluster: try b.int("cluster", min: 0),
                             outBasis: try parseName(b, "out"), inBasis: try parseName(b, "in"),
                             conversion: try parseConversion(b.optionalObject("conversion")))
        }
        let members = try f.objects("members").map { m in
            BankRecord.Member(name: try parseName(m, "name"), cluster: try m.optionalInt("cluster", min: 0) ?? 0,
                              metadata: AdapterMetadata(try m.isPresent("metadata") ? m.stringMap("metadata") : []),
                              modules: try m.objects("modules").map(parseModule),
                              replaced: try m.isPresent("replaced_tensors") ? m.objects("replaced_tensors").map(parseReplaced) : [],
                              sourceBytes: try m.optionalInt("source_bytes", min: 0))
        }
        return BankRecord(bases: bases, members: members, conversion: try parseConversion(f.optionalObject("conversion")))
    }

    private static func parseName(_ f: JSONFields, _ key: String) throws -> String {
        let s = try f.string(key)
        guard !s.isEmpty, s.utf8.count <= ContainerLayout.maxNameLength else {
            throw f.problem(key, "must be 1 to \(ContainerLayout.maxNameLength) bytes")
        }
        return s
    }

    private static func parseTensor(_ f: JSONFields) throws -> TensorEntry {
        let name = try parseName(f, "name")
        let dtypeName = try f.string("dtype")
        guard let dtype = FormatVocabulary.dtype(named: dtypeName) else {
            throw f.problem("dtype", "unknown dtype \"\(dtypeName)\" (expected \(FormatVocabulary.dtypeNames.joined(separator: ", ")))")
        }
        let shape = try f.intArray("shape", min: 0, max: Int.max, maxCount: ContainerLayout.maxRank)
        guard let count = CheckedSize.product(shape), CheckedSize.multiply(count, dtype.byteWidth) != nil else {
            throw f.problem("shape", "\(shape) has more elements than can be addressed")
        }
        let codecName = try f.string("codec")
        guard let codec = Codec(rawValue: codecName) else { throw f.problem("codec", "unknown codec \"\(codecName)\"") }
        let offset = try f.int("offset", min: 0)
        let length = try f.int("length", min: 0)
        let checksumText = try f.string("xxh64")
        guard let checksum = XXH64.parseHex(checksumText) else { throw f.problem("xxh64", "must be 16 lowercase hex digits") }
        return TensorEntry(name: name, dtype: dtype, shape: shape, codec: codec, offset: offset, length: length, checksum: checksum)
    }

    private static func parseConversion(_ f: JSONFields?) throws -> ConversionRecord? {
        guard let f else { return nil }
        // Errors are Frobenius ratios: finite (JSONFields.double) and never negative.
        for key in ["max_rel_error", "rel_error"] where try (f.optionalDouble(key) ?? 0) < 0 {
            throw f.problem(key, "must not be negative")
        }
        return ConversionRecord(method: try f.string("method"), maxRelativeError: try f.optionalDouble("max_rel_error"),
                                relativeError: try f.optionalDouble("rel_error"), sourceParameters: try f.optionalInt("source_parameters", min: 0),
                                note: try f.optionalString("note"))
    }

    private static func parseModule(_ f: JSONFields) throws -> ModuleRecord {
        let name = try parseName(f, "name")
        let target = f.isPresent("target") ? try parseName(f, "target") : name + ".weight"
        let kindName = try f.optionalString("kind") ?? ModuleKind.linear.rawValue
        guard let kind = ModuleKind(rawValue: kindName) else { throw f.problem("kind", "unknown module kind \"\(kindName)\"") }
        let layoutName = try f.optionalString("layout") ?? WeightLayout.outIn.rawValue
        guard let layout = WeightLayout(rawValue: layoutName) else { throw f.problem("layout", "unknown layout \"\(layoutName)\"") }
        let shape = try f.intArray("shape", min: 1, maxCount: 2)
        guard shape.count == 2 else { throw f.problem("shape", "must be [out, in]") }
        let scale = try f.double("scale")
        let u = try f.object("update")
        let type = try u.string("type")
        guard let updateKind = FormatVocabulary.updateKind(named: type) else { throw u.problem("type", "unknown update type \"\(type)\"") }
        let update: ModuleRecord.Update
        switch updateKind {
        case .lowRank: update = .lowRank(a: try parseName(u, "a"), b: try parseName(u, "b"))
        case .tensorTrain:
            let cores = try u.stringArray("cores")
            guard !cores.isEmpty else { throw u.problem("cores", "must not be empty") }
            func order(_ key: String) throws -> DigitOrder {
                guard let name = try u.optionalString(key) else { return .forward }
                guard let o = DigitOrder(rawValue: name) else { throw u.problem(key, "unknown digit order \"\(name)\" (forward or reversed)") }
                return o
            }
            update = .tensorTrain(cores: cores, rowOrder: try order("row_order"), columnOrder: try order("column_order"))
        case .jointTrain:
            let cores = try u.stringArray("cores")
            guard !cores.isEmpty else { throw u.problem("cores", "must not be empty") }
            update = .jointTrain(cores: cores, latent: try parseName(u, "latent"), rank: try u.int("rank", min: 1))
        case .tuckerSlice: update = .tuckerSlice(group: try parseName(u, "group"), index: try u.intArray("index", min: 0, maxCount: ContainerLayout.maxRank))
        case .dense: update = .dense(delta: try parseName(u, "delta"))
        case .convTucker: update = .convTucker(core: try parseName(u, "core"), a: try parseName(u, "a"), b: try parseName(u, "b"))
        case .kronecker: update = .kronecker(w1: try parseFactor(u.object("w1")), w2: try parseFactor(u.object("w2")))
        case .hadamard: update = .hadamard(p1: try parseFactor(u.object("p1")), p2: try parseFactor(u.object("p2")))
        case .diagonalLowRank: update = .diagonalLowRank(a: try parseName(u, "a"), b: try parseName(u, "b"), e: try parseName(u, "e"))
        case .vera:
            update = .vera(projections: try parseName(u, "projections"), lambdaB: try parseName(u, "lambda_b"), lambdaD: try parseName(u, "lambda_d"))
        case .featureScale: update = .featureScale(vector: try parseName(u, "vector"), axis: try parseAxis(u, "axis") ?? .out)
        case .bankCore: update = .bankCore(basis: try parseName(u, "basis"), core: try parseName(u, "core"))
        }
        let kernel = f.isPresent("kernel") ? try f.intArray("kernel", min: 1, maxCount: 3) : []
        if f.isPresent("kernel"), kernel.isEmpty { throw f.problem("kernel", "must list 1 to 3 sizes") }
        let doraAxis = try parseAxis(f, "dora_axis") ?? .out
        let doraEpsilon = try f.optionalDouble("dora_epsilon") ?? 0
        guard doraEpsilon >= 0 else { throw f.problem("dora_epsilon", "must be ≥ 0") }
        let attributes = try f.isPresent("attributes") ? f.stringMap("attributes") : []
        return ModuleRecord(name: name, target: target, kind: kind, layout: layout, outFeatures: shape[0], inFeatures: shape[1],
                            scale: scale, update: update, doraMagnitude: try f.isPresent("dora_magnitude") ? parseName(f, "dora_magnitude") : nil,
                            doraAxis: doraAxis, doraEpsilon: doraEpsilon, kernel: kernel,
                            biasDelta: try f.isPresent("bias_delta") ? parseName(f, "bias_delta") : nil,
                            conversion: try parseConversion(f.optionalObject("conversion")),
                            attributes: Dictionary(attributes, uniquingKeysWith: { a, _ in a }))
    }

    private static func parseAxis(_ f: JSONFields, _ key: String) throws -> FeatureAxis? {
        guard let name = try f.optionalString(key) else { return nil }
        guard let axis = FeatureAxis(rawValue: name) else { throw f.problem(key, "unknown axis \"\(name)\" (out or in)") }
        return axis
    }

    private static func parseFactor(_ f: JSONFields) throws -> ModuleRecord.Factor {
        let form = try f.string("form")
        switch form {
        case "full": return .full(try parseName(f, "matrix"))
        case "low_rank": return .lowRank(a: try parseName(f, "a"), b: try parseName(f, "b"))
        case "tucker": return .tucker(core: try parseName(f, "core"), a: try parseName(f, "a"), b: try parseName(f, "b"))
        default: throw f.problem("form", "unknown factor form \"\(form)\" (full, low_rank or tucker)")
        }
    }

    private static func parseGroup(_ f: JSONFields) throws -> TuckerGroupRecord {
        let modes = try f.objects("modes").map { m -> TuckerMode in
            let roleName = try m.string("role")
            guard let role = TuckerMode.Role(rawValue: roleName) else { throw m.problem("role", "unknown role \"\(roleName)\" (row, column or member)") }
            guard m.isPresent("labels") else { return TuckerMode(role: role, name: try m.string("name")) }
            // Labels name members (§2.4): only member modes have them, and then one per member (I ≥ 1).
            guard role == .member else { throw m.problem("labels", "only a member mode has labels, this is a \(roleName) mode") }
            let labels = try m.stringArray("labels")
            guard !labels.isEmpty else { throw m.problem("labels", "must have one label per member") }
            return TuckerMode(role: role, name: try m.string("name"), labels: labels)
        }
        return TuckerGroupRecord(name: try parseName(f, "name"), core: try parseName(f, "core"), factors: try f.stringArray("factors"),
                                 modes: modes, conversion: try parseConversion(f.optionalObject("conversion")))
    }

    /// Blobs are contiguous and canonical: in listed order, the first at data offset 0, each next at
    /// the 64-aligned end of the previous, the file ending exactly at the end of the last.
    func checkLayout(path: String) throws {
        var expected = 0
        for t in tensors {
            guard t.offset == expected else {
                throw FormatError.invalidLayout(path: path, problem: "tensor \(t.name) starts at data offset \(t.offset), expected \(expected)")
            }
            switch t.codec {
            case .raw:
                guard t.length == t.decodedLength else {
                    throw FormatError.invalidLayout(path: path, problem: "raw tensor \(t.name) stores \(t.length) bytes but its shape needs \(t.decodedLength)")
                }
            case .zstd, .bytegroupZstd:
                guard t.length > 0, t.decodedLength <= Zstd.maximumDecodedLength(forCompressed: t.length) else {
                    throw FormatError.invalidLayout(path: path, problem: "tensor \(t.name) declares \(t.decodedLength) decoded bytes, impossible from \(t.length) compressed bytes")
                }
            }
            guard let end = CheckedSize.add(t.offset, t.length), let absoluteEnd = CheckedSize.add(dataStart, end), absoluteEnd <= fileLength else {
                throw FormatError.invalidLayout(path: path, problem: "tensor \(t.name) extends past the end of the file")
            }
            guard let next = CheckedSize.alignUp(end, to: ContainerLayout.alignment) else {
                throw FormatError.invalidLayout(path: path, problem: "tensor \(t.name) offsets overflow")
            }
            expected = next
            if t == tensors.last, absoluteEnd != fileLength {
                throw FormatError.invalidLayout(path: path, problem: "\(fileLength - absoluteEnd) bytes follow the last tensor")
            }
        }
        if tensors.isEmpty, dataStart != fileLength {
            throw FormatError.invalidLayout(path: path, problem: "\(fileLength - dataStart) bytes follow the header of a file without tensors")
        }
    }

    /// A bank file holds nothing but the bank and lists the feature (checked before anything else).
    private func checkBankAlone() throws {
        guard modules.isEmpty, tuckerGroups.isEmpty, replaced.isEmpty else {
            throw ModelError(.invalidForm, "bank", "a bank file holds every module in its members; modules, tucker_groups and replaced_tensors must be empty")
        }
        guard requiredFeatures.contains(ContainerLayout.bankFeature) else {
            throw ModelError(.invalidForm, "bank", "the file does not list the required feature \(ContainerLayout.bankFeature)")
        }
    }

    /// A bank (§2.8): every member module is a `bank_core`, each tensor is used once, and the shapes
    /// fit (`AdapterRules.check(bank:)`).
    private func checkBank(_ bank: BankRecord, use: (String, String) throws -> Void, shape: (String) -> [Int]) throws {
        for b in bank.bases {
            try use(b.outBasis, "bank basis \(b.name)")
            try use(b.inBasis, "bank basis \(b.name)")
        }
        var members: [BankShape.Member] = []
        for member in bank.members {
            var modules: [BankShape.Module] = []
            for m in member.modules {
                guard case .bankCore(let basis, let core) = m.update else {
                    throw ModelError(.invalidForm, "bank member \(member.name): \(m.name)", "a bank member's updates must be bank_core, not \(FormatVocabulary.name(of: m.update.kind))")
                }
                guard m.kernel.isEmpty, m.biasDelta == nil, m.doraAxis == .out, m.doraEpsilon == 0 else {
                    throw ModelError(.invalidForm, "bank member \(member.name): \(m.name)", "a bank member's module has no kernel, bias_delta, dora_axis or dora_epsilon")
                }
                for t in m.tensorNames { try use(t, "module \(m.name) of bank member \(member.name)") }
                modules.append(BankShape.Module(name: m.name, target: m.target, outFeatures: m.outFeatures, inFeatures: m.inFeatures, scale: m.scale,
                                                basis: basis, core: shape(core), doraMagnitude: m.doraMagnitude.map(shape)))
            }
            for r in member.replaced { try use(r.tensor, "replaced tensor \(r.target) of bank member \(member.name)") }
            do {
                try AdapterRules.checkReplacements(modules: member.modules.map { ($0.name, $0.target, $0.layout, $0.outFeatures, $0.inFeatures) },
                                                   replaced: member.replaced.map { ($0.target, shape($0.tensor)) })
            } catch let e as ModelError {
                throw ModelError(e.code, "bank member \(member.name): \(e.subject)", e.problem)
            }
            members.append(BankShape.Member(name: member.name, cluster: member.cluster, modules: modules, replacedTargets: member.replaced.map(\.target)))
        }
        try AdapterRules.check(bank: BankShape(bases: bank.bases.map {
            BankShape.Basis(name: $0.name, module: $0.module, cluster: $0.cluster, outBasis: shape($0.outBasis), inBasis: shape($0.inBasis))
        }, members: members))
    }

    /// Every referenced tensor exists and is referenced exactly once; shapes fit (`AdapterRules`).
    func checkSemantics(path: String) throws {
        var uses: [String: String] = [:]
        func use(_ name: String, by owner: String) throws {
            guard entry(name) != nil else { throw FormatError.invalidAdapter(path: path, problem: "\(owner): refers to tensor \(name), which is not in the file") }
            if let other = uses[name] { throw FormatError.invalidAdapter(path: path, problem: "tensor \(name) is used by both \(other) and \(owner)") }
            uses[name] = owner
        }
        func shape(_ name: String) -> [Int] { entry(name)?.shape ?? [] }
        do {
            if bank != nil { try checkBankAlone() }
            var groupShapes: [String: TuckerGroupShape] = [:]
            for g in tuckerGroups {
                for t in g.tensorNames { try use(t, by: "Tucker group \(g.name)") }
                let s = TuckerGroupShape(name: g.name, core: shape(g.core), factors: g.factors.map(shape), modes: g.modes)
                try AdapterRules.check(group: s)
                groupShapes[g.name] = s
            }
            var pairShapes: [String: ProjectionShape] = [:]
            for p in projections {
                for t in p.tensorNames { try use(t, by: "projections \(p.name)") }
                let s = ProjectionShape(a: shape(p.a), b: shape(p.b))
                try AdapterRules.check(projections: p.name, s)
                pairShapes[p.name] = s
            }
            if !projections.isEmpty, !requiredFeatures.contains("vera") {
                throw FormatError.missingRequiredFeature(path: path, subject: "projections", uses: "are listed", feature: "vera")
            }
            try AdapterRules.checkNames(modules: modules.map { m in
                var slice: String? = nil
                if case .tuckerSlice(let g, let i) = m.update { slice = g + "/" + i.map(String.init).joined(separator: ",") }
                return (m.name, m.target, slice)
            }, replacedTargets: replaced.map(\.target), groupNames: tuckerGroups.map(\.name), projectionNames: projections.map(\.name))
            for m in modules {
                for t in m.tensorNames { try use(t, by: "module \(m.name)") }
                if case .bankCore = m.update {
                    throw ModelError(m.name, "a bank_core update belongs in a bank member, not in the file's modules")
                }
                if case .tensorTrain(_, let rowOrder, let columnOrder) = m.update, rowOrder != .forward || columnOrder != .forward,
                   !requiredFeatures.contains(ContainerLayout.ttIndexOrderFeature) {
                    throw FormatError.missingRequiredFeature(path: path, subject: m.name, uses: "uses row_order/column_order", feature: ContainerLayout.ttIndexOrderFeature)
                }
                let update = updateShape(m)
                // A file that uses a form or part a reader must know says so (docs/FORMAT.md §2.1).
                var needed: [(String, String)] = []
                if let f = ContainerLayout.feature(of: m.update.kind) {
                    needed.append((f, m.update.kind == .jointTrain ? "is a joint train" : "is a \(m.update.kind.rawValue) update"))
                }
                if !m.kernel.isEmpty { needed.append((ContainerLayout.convKernelFeature, "adapts a convolution")) }
                if m.doraMagnitude != nil, m.doraAxis == .in { needed.append((ContainerLayout.doraInAxisFeature, "has DoRA on the input axis")) }
                if m.biasDelta != nil { needed.append((ContainerLayout.biasDeltaFeature, "changes a bias")) }
                for (feature, what) in needed where !requiredFeatures.contains(feature) {
                    throw FormatError.missingRequiredFeature(path: path, subject: m.name, uses: what, feature: feature)
                }
                let extras = ModuleExtras(kernel: m.kernel, layout: m.layout, doraMagnitude: m.doraMagnitude.map(shape), doraAxis: m.doraAxis,
                                          doraEpsilon: m.doraEpsilon, biasDelta: m.biasDelta.map(shape))
                try AdapterRules.check(module: m.name, outFeatures: m.outFeatures, inFeatures: m.inFeatures, scale: m.scale,
                                       update: update, extras: extras, groups: groupShapes, projections: pairShapes)
            }
            for r in replaced { try use(r.tensor, by: "replaced tensor \(r.target)") }
            try AdapterRules.checkReplacements(modules: modules.map { ($0.name, $0.target, $0.layout, $0.outFeatures, $0.inFeatures) },
                                               replaced: replaced.map { ($0.target, shape($0.tensor)) })
            let usedGroups = Set(modules.compactMap { m -> String? in if case .tuckerSlice(let g, _) = m.update { return g }; return nil })
            if let idle = tuckerGroups.first(where: { !usedGroups.contains($0.name) }) {
                throw ModelError(.unusedPart, "Tucker group \(idle.name)", "is used by no module")
            }
            // Shared projections no module uses are orphans too (§2.7), like an unused group.
            let usedPairs = Set(modules.compactMap { m -> String? in if case .vera(let p, _, _) = m.update { return p }; return nil })
            if let idle = projections.first(where: { !usedPairs.contains($0.name) }) {
                throw ModelError(.unusedPart, "projections \(idle.name)", "are used by no module")
            }
            if let bank { try checkBank(bank, use: use, shape: shape) }
        } catch let e as ModelError {
            throw FormatError.invalidAdapter(path: path, problem: e.description)
        }
        if let unused = tensors.first(where: { uses[$0.name] == nil }) {
            throw FormatError.invalidAdapter(path: path, problem: "tensor \(unused.name) is not used by any module, group, projections, bank entry or replaced tensor")
        }
    }
}
