/// Why a conversion, merge or verification could not be done. The message names the file or
/// module at fault and what to do.
///
/// A struct with a `code` over a private enum (as swift-nio's errors are): match on `code`, read
/// the one-line `description`.
public struct ConvertError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What stands in the way.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case general, missingBaseTensor, shapeMismatch, conflictingUpdates, nonFiniteValues, notSupported
            case errorBoundExceeded, invalidOptions, missingPart, tooLarge, notServable
            case differentArchitecture, nothingToExtract
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Not yet given a kind of its own (what `ConvertError(_:)` makes).
        public static let general = Code(.general)
        /// The base has no tensor an adapter module (or replacement, or bias change) names.
        public static let missingBaseTensor = Code(.missingBaseTensor)
        /// Shapes that disagree: the base's and the adapter's, the reference's and the candidate's,
        /// modes or heads that do not divide a layer.
        public static let shapeMismatch = Code(.shapeMismatch)
        /// Two entries that update, replace or rescale the same tensor (or rows of it).
        public static let conflictingUpdates = Code(.conflictingUpdates)
        /// NaN or infinite values (or scale) in what would be merged.
        public static let nonFiniteValues = Code(.nonFiniteValues)
        /// A form or combination tlora does not convert or merge (an IA³ rescaling as ΔW …).
        public static let notSupported = Code(.notSupported)
        /// The measured error, after storage, exceeds `--max-rel-error`.
        public static let errorBoundExceeded = Code(.errorBoundExceeded)
        /// Options that do not fit the adapter (`--group att…` without heads or q/k/v, …).
        public static let invalidOptions = Code(.invalidOptions)
        /// A Tucker group or projection pair a module refers to is missing.
        public static let missingPart = Code(.missingPart)
        /// A result that would be too large to build.
        public static let tooLarge = Code(.tooLarge)
        /// An adapter that cannot be made to fit a serving target (vLLM's rules).
        public static let notServable = Code(.notServable)
        /// `extract`: a base and a fine-tune that do not hold the same tensors (names or shapes).
        public static let differentArchitecture = Code(.differentArchitecture)
        /// `extract`: a fine-tune identical to its base (in every tensor selected).
        public static let nothingToExtract = Code(.nothingToExtract)

        public var description: String { "\(base)" }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// An error of kind `.general`.
    public init(_ message: String) { self.init(.general, message) }

    public var description: String { message }
}
