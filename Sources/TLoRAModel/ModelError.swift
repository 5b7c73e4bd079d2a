/// An adapter whose parts do not fit together.
///
/// A struct over a private enum (as swift-nio's errors are), so kinds can be added without breaking
/// a caller's `switch`: match on `code`, read the one-line `description`.
public struct ModelError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What kind of rule the adapter breaks.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case general, emptyName, duplicateName, shapeMismatch, invalidValue, invalidForm, unknownReference, unusedPart
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Not yet given a kind of its own (what `ModelError(_:_:)` makes).
        public static let general = Code(.general)
        /// A module, group, projection pair or target with an empty name.
        public static let emptyName = Code(.emptyName)
        /// A name used twice, or a target, slice or replacement claimed twice.
        public static let duplicateName = Code(.duplicateName)
        /// Shapes that do not fit the layer or each other.
        public static let shapeMismatch = Code(.shapeMismatch)
        /// A number out of its range (a non-finite scale, a negative epsilon, an IA³ scale ≠ 1).
        public static let invalidValue = Code(.invalidValue)
        /// Parts that cannot go together (an IA³ vector with DoRA, a conv Tucker without a kernel …).
        public static let invalidForm = Code(.invalidForm)
        /// A reference to a Tucker group or projection pair that does not exist.
        public static let unknownReference = Code(.unknownReference)
        /// A part nothing uses (a Tucker group no module slices).
        public static let unusedPart = Code(.unusedPart)

        public var description: String { "\(base)" }
    }

    /// What kind of rule is broken.
    public let code: Code
    /// The module, group or tensor at fault.
    public let subject: String
    public let problem: String

    public init(_ code: Code, _ subject: String, _ problem: String) {
        self.code = code
        self.subject = subject
        self.problem = problem
    }

    /// An error of kind `.general`.
    public init(_ subject: String, _ problem: String) { self.init(.general, subject, problem) }

    public var description: String { "\(subject): \(problem)" }
}
