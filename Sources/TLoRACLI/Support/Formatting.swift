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

    /// Renders rows as left/right aligned columns (numbers right-aligned).
    static func table(header: [String], rows: [[String]], rightAligned: Set<Int>) -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return rightAligned.contains(i) ? pad + c : c + pad
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).map { String($0.reversed().drop(while: { $0 == " " }).reversed()) }.joined(separator: "\n")
    }
}
