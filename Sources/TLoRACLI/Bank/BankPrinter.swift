import TLoRAConvert
import TLoRAIO

/// The tables and totals `bank build` prints.
enum BankPrinter {
    static func print(_ s: BankSummary, output: String, fileBytes: Int, sourceBytes: Int) {
        let clustered = Set(s.pieces.map(\.cluster)).count > 1
        let pieceRows = s.pieces.map { p -> [String] in
            [p.module] + (clustered ? [String(p.cluster)] : []) + [String(p.members), Formatting.shape(p.ranks), String(p.sourceParameters), String(p.parameters),
                                                                    p.bound.map(Formatting.scientific) ?? "-", Formatting.scientific(p.worstError)]
        }
        let pieceHeader = ["module"] + (clustered ? ["cluster"] : []) + ["members", "k_out×k_in", "own params", "bank params", "bound", "worst err"]
        let shift = clustered ? 1 : 0
        Console.out(Formatting.table(header: pieceHeader, rows: pieceRows, rightAligned: Set([1, 3, 4, 5, 6].map { $0 + shift } + (clustered ? [1] : []))))
        Console.out("")
        let memberRows = s.members.map { m -> [String] in
            [m.name] + (clustered ? [String(m.cluster)] : []) + [String(m.modules), String(m.sourceParameters),
                                                                 Formatting.scientific(m.worstError), Formatting.scientific(m.overallError)]
        }
        let memberHeader = ["member"] + (clustered ? ["cluster"] : []) + ["modules", "own params", "worst module err", "overall err"]
        Console.out(Formatting.table(header: memberHeader, rows: memberRows, rightAligned: Set([1, 2, 3, 4].map { $0 + shift } + (clustered ? [1] : []))))
        for t in s.clusterTrials {
            Console.text("clusters \(t.clusters): \(t.parameters) parameters, worst error \(Formatting.scientific(t.worstError))")
        }
        for n in s.notes { Console.text("note: \(n)") }
        let ratio = s.sourceParameters > 0 ? Double(s.parameters) / Double(s.sourceParameters) : 0
        let bytesRatio = sourceBytes > 0 ? Double(fileBytes) / Double(sourceBytes) : 0
        Console.text("\(output): \(s.members.count) members in \(Formatting.bytes(fileBytes)) (\(Formatting.fixed(bytesRatio, digits: 3))× their own \(Formatting.bytes(sourceBytes))); "
            + "\(s.parameters) parameters (\(Formatting.fixed(ratio, digits: 3))× their \(s.sourceParameters)); worst member error \(Formatting.scientific(s.worstError))"
            + (s.pieces.first?.bound.map { " (bound \(Formatting.scientific($0)) per member and module)" } ?? " (fixed rank, no bound)"))
    }

    static func json(_ s: BankSummary, output: String, fileBytes: Int, sourceBytes: Int) -> String {
        func opt(_ d: Double?) -> JSONValue { d.map { JSONValue($0) } ?? .null }
        var root = JSONObject()
        root["output"] = JSONValue(output)
        root["file_bytes"] = JSONValue(fileBytes)
        root["source_bytes"] = JSONValue(sourceBytes)
        root["parameters"] = JSONValue(s.parameters)
        root["source_parameters"] = JSONValue(s.sourceParameters)
        root["worst_rel_error"] = JSONValue(s.worstError)
        root["bases"] = .array(s.pieces.map { p in
            .object(JSONObject([("module", JSONValue(p.module)), ("cluster", JSONValue(p.cluster)), ("members", JSONValue(p.members)),
                                ("ranks", JSONValue(p.ranks)), ("source_parameters", JSONValue(p.sourceParameters)),
                                ("parameters", JSONValue(p.parameters)), ("max_rel_error", opt(p.bound)), ("rel_error", JSONValue(p.worstError))]))
        })
        root["members"] = .array(s.members.map { m in
            .object(JSONObject([("name", JSONValue(m.name)), ("cluster", JSONValue(m.cluster)), ("modules", JSONValue(m.modules)),
                                ("source_parameters", JSONValue(m.sourceParameters)), ("worst_rel_error", JSONValue(m.worstError)),
                                ("overall_rel_error", JSONValue(m.overallError))]))
        })
        root["cluster_trials"] = .array(s.clusterTrials.map { t in
            .object(JSONObject([("clusters", JSONValue(t.clusters)), ("parameters", JSONValue(t.parameters)), ("worst_rel_error", JSONValue(t.worstError))]))
        })
        root["notes"] = JSONValue(s.notes)
        return JSONWriter.string(.object(root), indent: 2)
    }
}
