/// A failure a command reports itself: `tlora` prints `error: <message>` and exits with `code`.
struct CommandFailure: Error, CustomStringConvertible {
    let message: String
    let code: Int32

    init(_ message: String, code: Int32 = 1) {
        self.message = message
        self.code = code
    }

    var description: String { message }
}

/// A command that finished and wants a specific non-zero exit status without an error line
/// (`verify` found a problem and already printed it).
struct ExitStatus: Error {
    let code: Int32
}
