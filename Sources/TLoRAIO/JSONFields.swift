/// Typed, path-aware access to the fields of an untrusted JSON object. Every failure names the
/// field's path (e.g. `modules[3].update.a`) so error messages point at the problem.
package struct JSONFields {
    package let object: JSONObject
    /// Where this object sits in the document, e.g. `tensors[2]`.
    package let path: String

    package struct Problem: Error, CustomStringConvertible, Sendable {
        package let path: String
        package let message: String
        package init(path: String, message: String) {
            self.path = path
            self.message = message
        }
        package var description: String { "\(path): \(message)" }
    }

    package init(_ value: JSONValue, path: String) throws {
        guard let o = value.objectValue else { throw Problem(path: path, message: "expected an object") }
        self.object = o
        self.path = path
    }

    package func fieldPath(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    package func problem(_ key: String, _ message: String) -> Problem { Problem(path: fieldPath(key), message: message) }

    package func has(_ key: String) -> Bool { object.contains(key) }

    /// True when the key is there and not `null` (an optional key given as `null` counts as absent).
    package func isPresent(_ key: String) -> Bool { object[key].map { !$0.isNull } ?? false }

    package func value(_ key: String) throws -> JSONValue {
        guard let v = object[key] else { throw problem(key, "missing") }
        return v
    }

    package func string(_ key: String) throws -> String {
        guard let s = try value(key).stringValue else { throw problem(key, "expected a string") }
        return s
    }

    package func optionalString(_ key: String) throws -> String? {
        guard let v = object[key], !v.isNull else { return nil }
        guard let s = v.stringValue else { throw problem(key, "expected a string") }
        return s
    }

    package func int(_ key: String, min: Int = Int.min, max: Int = Int.max) throws -> Int {
        guard let i = try value(key).intValue else { throw problem(key, "expected an integer") }
        guard i >= min, i <= max else { throw problem(key, "\(i) is outside \(min)...\(max)") }
        return i
    }

    package func optionalInt(_ key: String, min: Int = Int.min, max: Int = Int.max) throws -> Int? {
        guard let v = object[key], !v.isNull else { return nil }
        return try int(key, min: min, max: max)
    }

    package func double(_ key: String) throws -> Double {
        guard let d = try value(key).doubleValue else { throw problem(key, "expected a finite number") }
        return d
    }

    package func optionalDouble(_ key: String) throws -> Double? {
        guard let v = object[key], !v.isNull else { return nil }
        return try double(key)
    }

    package func bool(_ key: String) throws -> Bool {
        guard let b = try value(key).boolValue else { throw problem(key, "expected true or false") }
        return b
    }

    package func optionalBool(_ key: String) throws -> Bool? {
        guard let v = object[key], !v.isNull else { return nil }
        return try bool(key)
    }

    package func array(_ key: String) throws -> [JSONValue] {
        guard let a = try value(key).arrayValue else { throw problem(key, "expected an array") }
        return a
    }

    package func optionalArray(_ key: String) throws -> [JSONValue]? {
        guard let v = object[key], !v.isNull else { return nil }
        return try array(key)
    }

    package func object(_ key: String) throws -> JSONFields {
        try JSONFields(value(key), path: fieldPath(key))
    }

    package func optionalObject(_ key: String) throws -> JSONFields? {
        guard let v = object[key], !v.isNull else { return nil }
        return try JSONFields(v, path: fieldPath(key))
    }

    /// An array of integers within bounds.
    package func intArray(_ key: String, min: Int = Int.min, max: Int = Int.max, maxCount: Int = Int.max) throws -> [Int] {
        let items = try array(key)
        guard items.count <= maxCount else { throw problem(key, "more than \(maxCount) entries") }
        return try items.enumerated().map { i, v in
            guard let n = v.intValue else { throw Problem(path: fieldPath(key) + "[\(i)]", message: "expected an integer") }
            guard n >= min, n <= max else { throw Problem(path: fieldPath(key) + "[\(i)]", message: "\(n) is outside \(min)...\(max)") }
            return n
        }
    }

    /// An array of strings.
    package func stringArray(_ key: String) throws -> [String] {
        try array(key).enumerated().map { i, v in
            guard let s = v.stringValue else { throw Problem(path: fieldPath(key) + "[\(i)]", message: "expected a string") }
            return s
        }
    }

    /// An object whose values are all strings.
    package func stringMap(_ key: String) throws -> [(String, String)] {
        let o = try object(key)
        return try o.object.pairs.map { pair in
            guard let s = pair.value.stringValue else { throw o.problem(pair.key, "expected a string") }
            return (pair.key, s)
        }
    }

    /// Each element of an array as an object.
    package func objects(_ key: String) throws -> [JSONFields] {
        try array(key).enumerated().map { i, v in try JSONFields(v, path: fieldPath(key) + "[\(i)]") }
    }
}
