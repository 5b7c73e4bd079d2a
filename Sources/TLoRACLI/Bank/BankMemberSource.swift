import TLoRAConvert
import TLoRAInputs
import TLoRAIO
import TLoRAModel

/// A member given on the command line: `PATH`, or `NAME=PATH` to name it.
struct BankMemberArgument {
    var name: String
    var path: String

    /// `NAME=PATH` names the member; a bare path names it after its base name without extension
    /// (`runs/task7/` → `task7`, `a/b.tlora` → `b`). An argument that exists as a path is a path
    /// even if it contains `=`.
    init(_ argument: String) {
        if pathKind(argument) == .missing, let eq = argument.firstIndex(of: "="), eq != argument.startIndex {
            name = String(argument[..<eq])
            path = String(argument[argument.index(after: eq)...])
        } else {
            path = argument
            name = Self.baseName(argument)
        }
    }

    static func baseName(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1, p.hasSuffix("/") { p = p.dropLast() }
        var base = p.split(separator: "/").last.map(String.init) ?? String(p)
        if pathKind(path) != .directory, let dot = base.lastIndex(of: "."), dot != base.startIndex {
            base = String(base[..<dot])
        }
        return base
    }

    /// Reads the member's adapter.
    func load(options: AdapterSourceOptions) throws -> BankBuilder.Source {
        let adapter = try AdapterLoader.load(path, options: options)
        return BankBuilder.Source(name: name, adapter: adapter, sourceBytes: adapter.rawByteCount)
    }
}
