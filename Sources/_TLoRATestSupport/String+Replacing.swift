extension String {
    /// The string with the first occurrence of `target` replaced (traps if absent: a test bug).
    public func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let r = firstRange(of: target) else { preconditionFailure("\(target) not in \(self)") }
        var copy = self
        copy.replaceSubrange(r, with: replacement)
        return copy
    }
}
