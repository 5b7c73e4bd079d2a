import TLoRAFormat
import TLoRAIO

extension InspectReport {
    /// What `inspect` shows of an adapter bank: its members, its shared bases, and its size against
    /// the members' own.
    struct BankInfo {
        struct Member {
            var name: String
            var cluster: Int
            var modules: Int
            /// Parameters and bytes of the member's own tensors in the bank (cores, DoRA, replaced).
            var parameters: Int
            var storedBytes: Int
            /// Parameters of the member's updates before they joined the bank.
            var sourceParameters: Int
            var sourceBytes: Int?
            var maxRelativeError: Double?
            /// The worst recorded error over the member's modules.
            var relativeError: Double?
        }

        struct Basis {
            var name: String
            var module: String
            var cluster: Int
            /// `[out, in]` and `[k_out, k_in]`.
            var shape: [Int]
            var ranks: [Int]
            var members: Int
            var parameters: Int
            var storedBytes: Int
            var maxRelativeError: Double?
            var relativeError: Double?
        }

        var members: [Member]
        var bases: [Basis]
        var maxRelativeError: Double?
        var relativeError: Double?

        var clusters: Int { Set(bases.map(\.cluster)).count }
        var sourceParameters: Int { members.reduce(0) { $0 + $1.sourceParameters } }
        /// The members' own bytes, when every member recorded them.
        var sourceBytes: Int? {
            members.allSatisfy { $0.sourceBytes != nil } ? members.reduce(0) { $0 + ($1.sourceBytes ?? 0) } : nil
        }
        var parameters: Int { bases.reduce(0) { $0 + $1.parameters } + members.reduce(0) { $0 + $1.parameters } }

        /// From the header alone.
        init(_ bank: BankRecord, header h: ContainerHeader) {
            func entries(_ names: [String]) -> [TensorEntry] { names.compactMap { h.entry($0) } }
            maxRelativeError = bank.conversion?.maxRelativeError
            relativeError = bank.conversion?.relativeError
            members = bank.members.map { m in
                let es = entries(m.tensorNames)
                return Member(name: m.name, cluster: m.cluster, modules: m.modules.count, parameters: es.reduce(0) { $0 + $1.elementCount },
                              storedBytes: es.reduce(0) { $0 + $1.length },
                              sourceParameters: m.modules.reduce(0) { $0 + ($1.conversion?.sourceParameters ?? 0) }, sourceBytes: m.sourceBytes,
                              maxRelativeError: m.modules.compactMap { $0.conversion?.maxRelativeError }.max(),
                              relativeError: m.modules.compactMap { $0.conversion?.relativeError }.max())
            }
            bases = bank.bases.map { b in
                let es = entries([b.outBasis, b.inBasis])
                let served = bank.members.filter { $0.modules.contains { if case .bankCore(let n, _) = $0.update { return n == b.name }; return false } }.count
                return Basis(name: b.name, module: b.module, cluster: b.cluster, shape: es.map { $0.shape[0] }, ranks: es.map { $0.shape.last ?? 0 },
                             members: served, parameters: es.reduce(0) { $0 + $1.elementCount }, storedBytes: es.reduce(0) { $0 + $1.length },
                             maxRelativeError: b.conversion?.maxRelativeError, relativeError: b.conversion?.relativeError)
            }
        }

        func renderText(fileBytes: Int) -> [String] {
            var out: [String] = [""]
            let memberRows = members.map { m -> [String] in
                [m.name, String(m.cluster), String(m.modules), String(m.sourceParameters), m.sourceBytes.map(Formatting.bytes) ?? "-",
                 String(m.parameters), Formatting.bytes(m.storedBytes), m.maxRelativeError.map(Formatting.scientific) ?? "-",
                 m.relativeError.map(Formatting.scientific) ?? "-"]
            }
            out.append(Formatting.table(header: ["member", "cluster", "modules", "own params", "own bytes", "core params", "stored", "bound", "worst err"],
                                        rows: memberRows, rightAligned: [1, 2, 3, 4, 5, 6, 7, 8]))
            out.append("")
            let basisRows = bases.map { b -> [String] in
                [b.module, String(b.cluster), Formatting.shape(b.shape), Formatting.shape(b.ranks), String(b.members), String(b.parameters),
                 Formatting.bytes(b.storedBytes), b.maxRelativeError.map(Formatting.scientific) ?? "-", b.relativeError.map(Formatting.scientific) ?? "-"]
            }
            out.append(Formatting.table(header: ["bases of module", "cluster", "ΔW", "k_out×k_in", "members", "params", "stored", "bound", "worst err"],
                                        rows: basisRows, rightAligned: [1, 4, 5, 6, 7, 8]))
            out.append("")
            var line = "bank: \(members.count) members, \(bases.count) bases in \(clusters) cluster\(clusters == 1 ? "" : "s"); "
            line += "\(parameters) parameters (\(Self.ratioText(parameters, sourceParameters)) the members' own \(sourceParameters))"
            out.append(line)
            if let own = sourceBytes {
                out.append("size: \(Formatting.bytes(fileBytes)) file vs the members' own \(Formatting.bytes(own)) (\(Self.ratioText(fileBytes, own)))")
            } else {
                out.append("size: \(Formatting.bytes(fileBytes)) file (the members' own sizes were not recorded)")
            }
            if let e = relativeError {
                out.append("worst member error on any module: \(Formatting.scientific(e))" + (maxRelativeError.map { " (bound \(Formatting.scientific($0)), per member and module)" } ?? " (fixed rank, no bound)"))
            }
            return out
        }

        static func ratioText(_ a: Int, _ b: Int) -> String {
            b > 0 ? Formatting.fixed(Double(a) / Double(b), digits: 3) + "×" : "-"
        }

        func json(fileBytes: Int) -> JSONValue {
            func opt(_ d: Double?) -> JSONValue { d.map { JSONValue($0) } ?? .null }
            func opt(_ i: Int?) -> JSONValue { i.map { JSONValue($0) } ?? .null }
            return .object(JSONObject([
                ("members", .array(members.map { m in
                    .object(JSONObject([
                        ("name", JSONValue(m.name)), ("cluster", JSONValue(m.cluster)), ("modules", JSONValue(m.modules)),
                        ("source_parameters", JSONValue(m.sourceParameters)), ("source_bytes", opt(m.sourceBytes)),
                        ("parameters", JSONValue(m.parameters)), ("stored_bytes", JSONValue(m.storedBytes)),
                        ("max_rel_error", opt(m.maxRelativeError)), ("rel_error", opt(m.relativeError)),
                    ]))
                })),
                ("bases", .array(bases.map { b in
                    .object(JSONObject([
                        ("name", JSONValue(b.name)), ("module", JSONValue(b.module)), ("cluster", JSONValue(b.cluster)), ("shape", JSONValue(b.shape)),
                        ("ranks", JSONValue(b.ranks)), ("members", JSONValue(b.members)), ("parameters", JSONValue(b.parameters)),
                        ("stored_bytes", JSONValue(b.storedBytes)), ("max_rel_error", opt(b.maxRelativeError)), ("rel_error", opt(b.relativeError)),
                    ]))
                })),
                ("clusters", JSONValue(clusters)), ("parameters", JSONValue(parameters)), ("source_parameters", JSONValue(sourceParameters)),
                ("file_bytes", JSONValue(fileBytes)), ("source_bytes", opt(sourceBytes)),
                ("max_rel_error", opt(maxRelativeError)), ("rel_error", opt(relativeError)),
            ]))
        }
    }
}
