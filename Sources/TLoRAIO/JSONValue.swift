/// A parsed JSON document. Objects keep their key order (so output is deterministic) and never hold
/// a key twice: the parser rejects duplicates, because two readers must never read one file two ways.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The number's text exactly as written, so integers above 2⁵³ are read without loss.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public init(_ value: Int) { self = .number(String(value)) }
    /// JSON has no NaN or infinity: a non-finite value becomes `null` (values from files and
    /// options reach `--json` output, which must stay valid JSON whatever they are).
    public init(_ value: Double) {
        self = value.isFinite ? .number(JSONValue.format(value)) : .null
    }
    public init(_ value: String) { self = .string(value) }
    public init(_ value: Bool) { self = .bool(value) }
    public init(_ values: [Int]) { self = .array(values.map(JSONValue.init)) }
    public init(_ values: [String]) { self = .array(values.map(JSONValue.init)) }

    /// Shortest text that reads back as the same `Double`.
    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var objectValue: JSONObject? { if case .object(let o) = self { return o } else { return nil } }
    public var isNull: Bool { if case .null = self { return true } else { return false } }

    /// The number as an exact integer: nil for fractions, exponents, or values outside `Int`.
    public var intValue: Int? {
        guard case .number(let text) = self else { return nil }
        // `-0` is a number but not an integer: integers have exactly one spelling.
        guard text != "-0", !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else { return nil }
        return Int(text)
    }

    /// The number as a `Double` (nearest); nil when not a number or out of range.
    public var doubleValue: Double? {
        guard case .number(let text) = self, let d = Double(text), d.isFinite else { return nil }
        return d
    }

    public subscript(key: String) -> JSONValue? { objectValue?[key] }
}

/// An ordered JSON object with unique keys.
public struct JSONObject: Equatable, Sendable {
    public private(set) var pairs: [(key: String, value: JSONValue)] = []
    private var index: [String: Int] = [:]

    public init() {}

    public init(_ pairs: [(String, JSONValue)]) {
        for (k, v) in pairs { self[k] = v }
    }

    public var keys: [String] { pairs.map(\.key) }
    public var count: Int { pairs.count }

    public func contains(_ key: String) -> Bool { index[key] != nil }

    /// Sets or replaces a key (replacing keeps its position). Setting nil removes it.
    public subscript(key: String) -> JSONValue? {
        get { index[key].map { pairs[$0].value } }
        set {
            if let i = index[key] {
                if let v = newValue {
                    pairs[i].value = v
                } else {
                    pairs.remove(at: i)
                    index = [:]
                    for (j, p) in pairs.enumerated() { index[p.key] = j }
                }
            } else if let v = newValue {
                index[key] = pairs.count
                pairs.append((key, v))
            }
        }
    }

    /// Adds a key the caller knows is new; returns false if it was already present.
    mutating func insertNew(_ key: String, _ value: JSONValue) -> Bool {
        if index[key] != nil { return false }
        index[key] = pairs.count
        pairs.append((key, value))
        return true
    }

    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        a.pairs.count == b.pairs.count && zip(a.pairs, b.pairs).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}
