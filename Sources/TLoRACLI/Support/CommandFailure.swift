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

/// A command whose adapter a path-less conversion error (`ConvertError` names only the module) is
/// about: `tlora` puts that path in front, so the error line still names a file.
protocol ReadsAnAdapter {
    var adapterPath: String { get }
}

extension InspectCommand: ReadsAnAdapter { var adapterPath: String { path } }
extension ImportCommand: ReadsAnAdapter { var adapterPath: String { source } }
extension ToLoRACommand: ReadsAnAdapter { var adapterPath: String { source } }
extension DenseToTTCommand: ReadsAnAdapter { var adapterPath: String { source } }
extension DenseToTuckerCommand: ReadsAnAdapter { var adapterPath: String { source } }
extension ExportCommand: ReadsAnAdapter { var adapterPath: String { source } }
extension MergeCommand: ReadsAnAdapter { var adapterPath: String { adapters.joined(separator: ", ") } }
extension CombineCommand: ReadsAnAdapter { var adapterPath: String { adapters.joined(separator: ", ") } }
extension ExtractCommand: ReadsAnAdapter { var adapterPath: String { finetuned } }
extension VerifyCommand: ReadsAnAdapter { var adapterPath: String { file } }
