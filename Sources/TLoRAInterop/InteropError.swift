/// Why a foreign file (safetensors, PEFT, MLX, GGUF, pickle, checkpoint) was refused.
/// The message always starts with the file or directory at fault.
public struct InteropError: Error, CustomStringConvertible, Equatable, Sendable {
    public let path: String
    public let problem: String

    public init(_ path: String, _ problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
}
