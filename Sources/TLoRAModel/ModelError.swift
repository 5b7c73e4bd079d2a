/// An adapter whose parts do not fit together.
public struct ModelError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The module, group or tensor at fault.
    public let subject: String
    public let problem: String

    public init(_ subject: String, _ problem: String) {
        self.subject = subject
        self.problem = problem
    }

    public var description: String { "\(subject): \(problem)" }
}
