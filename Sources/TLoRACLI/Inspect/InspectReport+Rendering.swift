import TLoRAIO

extension InspectReport {
    /// The table for people.
    func renderText() -> String {
        var out: [String] = []
        let kind = version.map { "\(format) \($0)" } ?? format
        var summary = "\(path): \(kind)"
        if !modules.isEmpty { summary += ", \(modules.count) modules" }
        if !groups.isEmpty { summary += ", \(groups.count) Tucker groups" }
        if !tensors.isEmpty { summary += ", \(tensors.count) tensors" }
        if let bank { summary += ", adapter bank of \(bank.members.count) members" }
        summary += ", \(Formatting.bytes(fileBytes))"
        out.append(summary)
        if !metadata.isEmpty {
            out.append("metadata:")
            for (k, v) in metadata { out.append("  \(k): \(v.count > 200 ? String(v.prefix(200)) + "…" : v)") }
        }
        for n in notes { out.append("note: \(n)") }
        if !components.isEmpty {
            out.append("")
            let rows = components.map { c -> [String] in
                [c.name, c.kind, String(c.tensors), String(c.parameters), Formatting.bytes(c.bytes), c.dtypes.joined(separator: ","),
                 c.files.count > 3 ? "\(c.files[0]) +\(c.files.count - 1)" : c.files.joined(separator: ", ")]
            }
            out.append(Formatting.table(header: ["component", "class or role", "tensors", "params", "bytes", "dtype", "files"],
                                        rows: rows, rightAligned: [2, 3, 4]))
        }
        if !modules.isEmpty {
            out.append("")
            let rows = modules.map { m -> [String] in
                [m.name, m.update + (m.dora ? "+dora" : ""), Formatting.shape(m.shape), m.ranks.isEmpty ? (m.detail ?? "-") : m.ranks.map(String.init).joined(separator: ","),
                 String(m.parameters), Formatting.bytes(m.storedBytes), m.dtype, m.codecs.joined(separator: ","),
                 Self.ratio(stored: m.storedBytes, parameters: m.parameters).map { Formatting.fixed($0, digits: 3) } ?? "-",
                 Formatting.scientific(m.scale), m.relativeError.map(Formatting.scientific) ?? "-"]
            }
            out.append(Formatting.table(header: ["module", "update", "ΔW", "ranks or slice", "params", "stored", "dtype", "codec", "vs f32", "scale", "rel.err"],
                                        rows: rows, rightAligned: [4, 5, 8, 9, 10]))
        }
        if !groups.isEmpty {
            out.append("")
            let rows = groups.map { g -> [String] in
                [g.name, g.modes.joined(separator: " "), Formatting.shape(g.dimensions), Formatting.shape(g.ranks), String(g.members), String(g.parameters),
                 Formatting.bytes(g.storedBytes), g.codecs.joined(separator: ","),
                 Self.ratio(stored: g.storedBytes, parameters: g.parameters).map { Formatting.fixed($0, digits: 3) } ?? "-",
                 g.maxRelativeError.map(Formatting.scientific) ?? "-", g.relativeError.map(Formatting.scientific) ?? "-"]
            }
            out.append(Formatting.table(header: ["Tucker group", "modes", "dims", "core", "members", "params", "stored", "codec", "vs f32", "bound", "rel.err"],
                                        rows: rows, rightAligned: [4, 5, 6, 8, 9, 10]))
        }
        if let bank { out += bank.renderText(fileBytes: fileBytes) }
        if !tensors.isEmpty {
            out.append("")
            let rows = tensors.map { t -> [String] in
                [t.name, t.dtype, Formatting.shape(t.shape), Formatting.bytes(t.storedBytes), t.codec ?? "-", t.location ?? ""]
            }
            out.append(Formatting.table(header: ["tensor", "dtype", "shape", "stored", "codec", ""], rows: rows, rightAligned: [3]))
        }
        guard bank == nil else { return out.joined(separator: "\n") }
        out.append("")
        out.append("total: \(totalParameters) parameters; " + Formatting.storage(stored: totalStoredBytes, parameters: totalParameters, file: fileBytes))
        return out.joined(separator: "\n")
    }

    /// One JSON document for scripts.
    func renderJSON() -> String {
        func opt(_ d: Double?) -> JSONValue { d.map { JSONValue($0) } ?? .null }
        var root = JSONObject()
        root["path"] = JSONValue(path)
        root["format"] = JSONValue(format)
        root["version"] = version.map(JSONValue.init) ?? .null
        root["file_bytes"] = JSONValue(fileBytes)
        root["metadata"] = .object(JSONObject(metadata.map { ($0.0, JSONValue($0.1)) }))
        root["modules"] = .array(modules.map { m in
            .object(JSONObject([
                ("name", JSONValue(m.name)), ("update", JSONValue(m.update)), ("shape", JSONValue(m.shape)), ("ranks", JSONValue(m.ranks)),
                ("parameters", JSONValue(m.parameters)), ("stored_bytes", JSONValue(m.storedBytes)), ("codecs", JSONValue(m.codecs)),
                ("dtype", JSONValue(m.dtype)), ("scale", JSONValue(m.scale)), ("dora", JSONValue(m.dora)),
                ("ratio_vs_f32", opt(Self.ratio(stored: m.storedBytes, parameters: m.parameters))),
                ("max_rel_error", opt(m.maxRelativeError)), ("rel_error", opt(m.relativeError)), ("detail", m.detail.map(JSONValue.init) ?? .null),
            ]))
        })
        root["tucker_groups"] = .array(groups.map { g in
            .object(JSONObject([
                ("name", JSONValue(g.name)), ("modes", JSONValue(g.modes)), ("dimensions", JSONValue(g.dimensions)), ("ranks", JSONValue(g.ranks)),
                ("members", JSONValue(g.members)), ("parameters", JSONValue(g.parameters)), ("stored_bytes", JSONValue(g.storedBytes)),
                ("codecs", JSONValue(g.codecs)), ("ratio_vs_f32", opt(Self.ratio(stored: g.storedBytes, parameters: g.parameters))),
                ("max_rel_error", opt(g.maxRelativeError)), ("rel_error", opt(g.relativeError)),
            ]))
        })
        root["tensors"] = .array(tensors.map { t in
            .object(JSONObject([
                ("name", JSONValue(t.name)), ("dtype", JSONValue(t.dtype)), ("shape", JSONValue(t.shape)),
                ("stored_bytes", JSONValue(t.storedBytes)), ("codec", t.codec.map(JSONValue.init) ?? .null), ("location", t.location.map(JSONValue.init) ?? .null),
            ]))
        })
        root["totals"] = .object(JSONObject([
            ("parameters", JSONValue(totalParameters)), ("stored_bytes", JSONValue(totalStoredBytes)),
            ("ratio_vs_f32", opt(Self.ratio(stored: totalStoredBytes, parameters: totalParameters))),
        ]))
        root["components"] = .array(components.map { c in
            .object(JSONObject([
                ("name", JSONValue(c.name)), ("kind", JSONValue(c.kind)), ("files", JSONValue(c.files)), ("tensors", JSONValue(c.tensors)),
                ("parameters", JSONValue(c.parameters)), ("bytes", JSONValue(c.bytes)), ("dtypes", JSONValue(c.dtypes)),
            ]))
        })
        root["notes"] = JSONValue(notes)
        if let bank { root["bank"] = bank.json(fileBytes: fileBytes) }
        return JSONWriter.string(.object(root), indent: 2)
    }
}
