/// Why a JSON text was refused, with the byte offset where the parser stopped.
///
/// A struct with a `code` over a private enum (as swift-nio's errors are): match on `code`, read
/// the one-line `description`.
public struct JSONError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What kind of text was refused.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case general, truncated, unexpectedCharacter, trailingData, tooDeep, invalidNumber, invalidString, duplicateKey
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Not yet given a kind of its own (what `JSONError(offset:message:)` makes).
        public static let general = Code(.general)
        /// The text ends inside a value (an unterminated string, array or object, a cut literal).
        public static let truncated = Code(.truncated)
        /// A byte that cannot start or continue the value there.
        public static let unexpectedCharacter = Code(.unexpectedCharacter)
        /// Anything but whitespace after the value.
        public static let trailingData = Code(.trailingData)
        /// Nesting deeper than the parser's `maxDepth`.
        public static let tooDeep = Code(.tooDeep)
        /// A malformed or overlong number literal.
        public static let invalidNumber = Code(.invalidNumber)
        /// A string with a control character, a bad escape, a lone surrogate or invalid UTF-8.
        public static let invalidString = Code(.invalidString)
        /// An object with the same key twice.
        public static let duplicateKey = Code(.duplicateKey)

        public var description: String { "\(base)" }
    }

    public let code: Code
    public let offset: Int
    public let message: String

    public init(_ code: Code, offset: Int, message: String) {
        self.code = code
        self.offset = offset
        self.message = message
    }

    /// An error of kind `.general`.
    public init(offset: Int, message: String) { self.init(.general, offset: offset, message: message) }

    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}

/// A strict RFC 8259 parser for untrusted headers.
///
/// Stricter than most: duplicate object keys, invalid UTF-8, lone surrogates, control characters in
/// strings, leading zeros, trailing garbage and nesting deeper than `maxDepth` are all errors. It never
/// recurses deeper than `maxDepth`, so hostile nesting cannot overflow the stack.
public struct JSONParser {
    public static let defaultMaxDepth = 64

    private let bytes: UnsafeRawBufferPointer
    private var pos = 0
    private let maxDepth: Int

    private init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    /// Parses one JSON value filling all of `bytes` (surrounding whitespace allowed).
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSONValue {
        var p = JSONParser(bytes, maxDepth: maxDepth)
        p.skipWhitespace()
        let v = try p.parseValue(depth: 0)
        p.skipWhitespace()
        guard p.pos == bytes.count else { throw p.error(.trailingData, "unexpected data after the JSON value") }
        return v
    }

    public static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSONValue {
        do {
            return try bytes.withUnsafeBytes { raw in try parse(raw, maxDepth: maxDepth) }
        } catch let e as JSONError {
            throw e
        } catch {
            throw JSONError(offset: 0, message: "\(error)")
        }
    }

    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSONValue {
        try parse(Array(text.utf8), maxDepth: maxDepth)
    }

    private func error(_ code: JSONError.Code, _ message: String) -> JSONError { JSONError(code, offset: pos, message: message) }

    private var current: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    private mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    private mutating func expect(_ literal: StaticString) throws(JSONError) {
        let n = literal.utf8CodeUnitCount
        guard bytes.count - pos >= n else { throw error(.truncated, "truncated literal") }
        let lit = UnsafeBufferPointer(start: literal.utf8Start, count: n)
        for i in 0..<n where bytes[pos + i] != lit[i] { throw error(.unexpectedCharacter, "invalid literal") }
        pos += n
    }

    private mutating func parseValue(depth: Int) throws(JSONError) -> JSONValue {
        guard let c = current else { throw error(.truncated, "unexpected end of input") }
        switch c {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw error(.unexpectedCharacter, "unexpected character 0x\(String(c, radix: 16))")
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONError) -> JSONValue {
        guard depth <= maxDepth else { throw error(.tooDeep, "nesting deeper than \(maxDepth)") }
        pos += 1
        var object = JSONObject()
        skipWhitespace()
        if current == UInt8(ascii: "}") { pos += 1; return .object(object) }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw error(.unexpectedCharacter, "expected a string key") }
            let keyOffset = pos
            let key = try parseString()
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw error(.unexpectedCharacter, "expected ':'") }
            pos += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            guard object.insertNew(key, value) else {
                throw JSONError(.duplicateKey, offset: keyOffset, message: "duplicate key \"\(key)\"")
            }
            skipWhitespace()
            guard let c = current else { throw error(.truncated, "unterminated object") }
            pos += 1
            if c == UInt8(ascii: "}") { return .object(object) }
            guard c == UInt8(ascii: ",") else { pos -= 1; throw error(.unexpectedCharacter, "expected ',' or '}'") }
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONError) -> JSONValue {
        guard depth <= maxDepth else { throw error(.tooDeep, "nesting deeper than \(maxDepth)") }
        pos += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth))
            skipWhitespace()
            guard let c = current else { throw error(.truncated, "unterminated array") }
            pos += 1
            if c == UInt8(ascii: "]") { return .array(items) }
            guard c == UInt8(ascii: ",") else { pos -= 1; throw error(.unexpectedCharacter, "expected ',' or ']'") }
        }
    }

    private mutating func parseNumber() throws(JSONError) -> String {
        let start = pos
        if current == UInt8(ascii: "-") { pos += 1 }
        guard let first = current, first >= 0x30, first <= 0x39 else { throw error(.invalidNumber, "invalid number") }
        pos += 1
        if first == 0x30, let c = current, c >= 0x30, c <= 0x39 { throw error(.invalidNumber, "leading zero in number") }
        skipDigits()
        if current == UInt8(ascii: ".") {
            pos += 1
            guard let c = current, c >= 0x30, c <= 0x39 else { throw error(.invalidNumber, "digit expected after '.'") }
            skipDigits()
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            pos += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { pos += 1 }
            guard let c = current, c >= 0x30, c <= 0x39 else { throw error(.invalidNumber, "digit expected in exponent") }
            skipDigits()
        }
        guard pos - start <= 400 else { throw error(.invalidNumber, "number literal too long") }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
    }

    private mutating func skipDigits() {
        while let c = current, c >= 0x30, c <= 0x39 { pos += 1 }
    }

    private mutating func parseHex4() throws(JSONError) -> UInt32 {
        guard bytes.count - pos >= 4 else { throw error(.truncated, "truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[pos]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw error(.invalidString, "invalid hex digit in \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    private mutating func parseString() throws(JSONError) -> String {
        pos += 1  // opening quote
        var out: [UInt8] = []
        var runStart = pos
        while true {
            guard pos < bytes.count else { throw error(.truncated, "unterminated string") }
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") {
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<pos]))
                pos += 1
                break
            }
            if c < 0x20 { throw error(.invalidString, "control character in string") }
            if c == UInt8(ascii: "\\") {
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<pos]))
                pos += 1
                guard pos < bytes.count else { throw error(.truncated, "unterminated escape") }
                let e = bytes[pos]
                pos += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if scalar >= 0xD800 && scalar < 0xDC00 {
                        guard bytes.count - pos >= 2, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                            throw error(.invalidString, "lone high surrogate")
                        }
                        pos += 2
                        let low = try parseHex4()
                        guard low >= 0xDC00 && low < 0xE000 else { throw error(.invalidString, "invalid low surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar < 0xE000 {
                        throw error(.invalidString, "lone low surrogate")
                    }
                    // Safe: surrogates were excluded above and the value is at most 0x10FFFF.
                    guard let u = Unicode.Scalar(scalar) else { throw error(.invalidString, "invalid code point") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default:
                    throw error(.invalidString, "invalid escape")
                }
                runStart = pos
                continue
            }
            pos += 1
        }
        guard let s = String(validating: out, as: UTF8.self) else {
            throw error(.invalidString, "string is not valid UTF-8")
        }
        return s
    }
}
