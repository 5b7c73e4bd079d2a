/// Why a conversion, merge or verification could not be done. The message names the file or
/// module at fault and what to do.
public struct ConvertError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
