import ArgumentParser

/// `--weights w1,w2,…`: one finite number per adapter (`combine`, `merge`).
enum WeightList {
    static func parse(_ text: String?, adapters: Int) throws -> [Double]? {
        guard let text else { return nil }
        let values = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingSpaces) ?? .nan }
        guard values.count == adapters else { throw ValidationError("--weights has \(values.count) values for \(adapters) adapters") }
        guard values.allSatisfy(\.isFinite) else { throw ValidationError("--weights must be numbers separated by commas") }
        return values
    }
}

extension Substring {
    /// Without leading and trailing spaces.
    var trimmingSpaces: String {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
