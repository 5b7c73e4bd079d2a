/// Serializes `JSONValue` deterministically: keys in their stored order, numbers as stored.
package enum JSONWriter {
    /// Compact (`indent == nil`) or pretty-printed text.
    package static func string(_ value: JSONValue, indent: Int? = nil) -> String {
        var out = ""
        write(value, into: &out, indent: indent, level: 0)
        return out
    }

    package static func bytes(_ value: JSONValue, indent: Int? = nil) -> [UInt8] {
        Array(string(value, indent: indent).utf8)
    }

    private static func newline(_ out: inout String, _ indent: Int?, _ level: Int) {
        guard let indent else { return }
        out.append("\n")
        out.append(String(repeating: " ", count: indent * level))
    }

    private static func write(_ value: JSONValue, into out: inout String, indent: Int?, level: Int) {
        switch value {
        case .null: out.append("null")
        case .bool(let b): out.append(b ? "true" : "false")
        case .number(let n): out.append(n)
        case .string(let s): writeString(s, into: &out)
        case .array(let items):
            if items.isEmpty { out.append("[]"); return }
            // Arrays of scalars stay on one line: shapes and offsets read better that way.
            let flat = items.allSatisfy { if case .array = $0 { return false }; if case .object = $0 { return false }; return true }
            out.append("[")
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(flat && indent != nil ? ", " : ",") }
                if !flat { newline(&out, indent, level + 1) }
                write(item, into: &out, indent: indent, level: level + 1)
            }
            if !flat { newline(&out, indent, level) }
            out.append("]")
        case .object(let object):
            if object.count == 0 { out.append("{}"); return }
            out.append("{")
            for (i, pair) in object.pairs.enumerated() {
                if i > 0 { out.append(",") }
                newline(&out, indent, level + 1)
                writeString(pair.key, into: &out)
                out.append(indent == nil ? ":" : ": ")
                write(pair.value, into: &out, indent: indent, level: level + 1)
            }
            newline(&out, indent, level)
            out.append("}")
        }
    }

    private static func writeString(_ s: String, into out: inout String) {
        out.append("\"")
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out.append("\"")
    }
}
