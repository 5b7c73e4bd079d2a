/// Human-readable numbers for tables.
enum Formatting {
    /// 1234567 → "1.18 MiB".
    static func bytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n)
        var u = 0
        while value >= 1024 && u < units.count - 1 {
            value /= 1024
            u += 1
        }
        return u == 0 ? "\(n) B" : fixed(value, digits: value < 10 ? 2 : (value < 100 ? 1 : 0)) + " " + units[u]
    }

    /// Fixed-point text without Foundation.
    static func fixed(_ value: Double, digits: Int) -> String {
        guard value.isFinite else { return "\(value)" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (abs(value) * scale).rounded()
        let whole = Int(rounded / scale)
        var frac = String(Int(rounded.truncatingRemainder(dividingBy: scale)))
        while frac.count < digits { frac = "0" + frac }
        let sign = value < 0 && rounded != 0 ? "-" : ""
        return digits == 0 ? sign + String(whole) : sign + String(whole) + "." + frac
    }

    /// Scientific text with 2 significant decimals, e.g. "3.14e-04".
    static func scientific(_ value: Double) -> String {
        guard value.isFinite else { return "\(value)" }
        if value == 0 { return "0" }
        var exponent = 0
        var m = abs(value)
        while m >= 10 { m /= 10; exponent += 1 }
        while m < 1 { m *= 10; exponent -= 1 }
        if (m * 100).rounded() >= 1000 { m /= 10; exponent += 1 }
        let e = abs(exponent) < 10 ? "0\(abs(exponent))" : "\(abs(exponent))"
        return (value < 0 ? "-" : "") + fixed(m, digits: 2) + "e" + (exponent < 0 ? "-" : "+") + e
    }

    /// The one size ratio every command reports: tensor bytes as stored (after codecs and
    /// quantization; headers and padding excluded) over the same parameters as raw f32.
    static func ratioToF32(stored: Int, parameters: Int) -> Double? {
        parameters > 0 ? Double(stored) / Double(parameters * 4) : nil
    }

    /// "tensors stored in 54.0 KiB (0.844× raw f32), file 61.3 KiB".
    static func storage(stored: Int, parameters: Int, file: Int) -> String {
        "tensors stored in \(bytes(stored))" + (ratioToF32(stored: stored, parameters: parameters).map { " (\(fixed($0, digits: 3))× raw f32)" } ?? "")
            + ", file \(bytes(file))"
    }

    /// "12×384×16".
    static func shape(_ dims: [Int]) -> String { dims.map(String.init).joined(separator: "×") }

    /// Renders rows as left/right aligned columns (numbers right-aligned), fitted to `width`
    /// (default: the terminal's, or `COLUMNS`; unlimited when neither is known). A table too wide
    /// puts each row's first cell (the name) on a line of its own and the other cells below it;
    /// if that is still too wide, the widest columns (free text) get lines of their own, one by one,
    /// and at last every cell does. Numbers are never shortened.
    static func table(header: [String], rows: [[String]], rightAligned: Set<Int>, width: Int? = Console.width) -> String {
        let full = aligned([header] + rows, rightAligned: rightAligned)
        guard let width, full.contains(where: { $0.count > width }) else { return full.joined(separator: "\n") }
        func fits(_ lines: [String]) -> Bool { !lines.contains { $0.count > width } }
        // The name on its own line, the rest below it, indented.
        let rest = aligned(([header] + rows).map { Array($0.dropFirst()) }, rightAligned: Set(rightAligned.compactMap { $0 > 0 ? $0 - 1 : nil }))
        var stacked: [String] = []
        for (i, row) in ([header] + rows).enumerated() {
            stacked.append(row[0])
            if !rest[i].isEmpty { stacked.append("  " + rest[i]) }
        }
        if fits(stacked) { return stacked.joined(separator: "\n") }
        // The widest columns (free text, a slice's group), one by one, on lines of their own, until
        // the remaining cells fit on one line below the name.
        let all = [header] + rows
        var moved: [Int] = []
        var keep = Array(1..<max(header.count, 1))
        while keep.count > 1 {
            let k = keep.max { a, b in all.map { $0[a].count }.max() ?? 0 < all.map { $0[b].count }.max() ?? 0 } ?? keep[0]
            keep.removeAll { $0 == k }
            moved.append(k)
            var shifted: Set<Int> = []
            for (j, i) in keep.enumerated() where rightAligned.contains(i) { shifted.insert(j) }
            let middle = aligned(all.map { row in keep.map { row[$0] } }, rightAligned: shifted)
            var lines: [String] = []
            for (i, row) in all.enumerated() {
                lines.append(row[0])
                if !middle[i].isEmpty { lines.append("  " + middle[i]) }
                for k in moved.sorted() where !row[k].isEmpty {
                    lines += wrap("    " + (i == 0 || header[k].isEmpty ? "" : header[k] + ": ") + row[k], width: width)
                }
            }
            if fits(lines) { return lines.joined(separator: "\n") }
        }
        // One cell per line, named by its header.
        var listed: [String] = []
        for row in rows {
            listed.append(row[0])
            for (h, cell) in zip(header.dropFirst(), row.dropFirst()) where !cell.isEmpty {
                listed += wrap("  " + (h.isEmpty ? "" : h + ": ") + cell, width: width)
            }
        }
        return listed.joined(separator: "\n")
    }

    /// Cells padded into columns (two spaces apart), trailing spaces removed.
    static func aligned(_ rows: [[String]], rightAligned: Set<Int>) -> [String] {
        guard let columns = rows.map(\.count).max(), columns > 0 else { return rows.map { _ in "" } }
        var widths = [Int](repeating: 0, count: columns)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        return rows.map { cells in
            let line = cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return rightAligned.contains(i) ? pad + c : c + pad
            }.joined(separator: "  ")
            return String(line.reversed().drop(while: { $0 == " " }).reversed())
        }
    }

    /// Breaks `line` at spaces so each piece fits `width`; continuation lines keep the line's
    /// indentation plus two spaces. A word longer than a whole line (a JSON value, a path) is cut
    /// into pieces that fit.
    static func wrap(_ line: String, width: Int) -> [String] {
        guard line.count > width else { return [line] }
        let indent = String(line.prefix(while: { $0 == " " }))
        let room = max(width - indent.count - 2, 8)
        var words: [Substring] = []
        for word in line.dropFirst(indent.count).split(separator: " ", omittingEmptySubsequences: false) {
            var rest = word
            while rest.count > room {
                words.append(rest.prefix(room))
                rest = rest.dropFirst(room)
            }
            words.append(rest)
        }
        var out: [String] = []
        var current = ""
        for word in words {
            let prefix = out.isEmpty ? indent : indent + "  "
            if current.isEmpty {
                current = prefix + word
            } else if current.count + 1 + word.count <= width {
                current += " " + word
            } else {
                out.append(current)
                current = indent + "  " + word
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}
