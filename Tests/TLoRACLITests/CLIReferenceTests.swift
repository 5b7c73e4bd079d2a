import Foundation
import Testing
import TLoRAIO
import _TLoRATestSupport

/// docs/CLI.md and `--help` agree for every command and every option: the synopsis at the top of
/// CLI.md lists each command's options (named groups like `[source options]` are defined in the same
/// block), and where it spells out an option's values (`--format peft|gguf`), they are the values
/// `--help` lists. Commands are found from `tlora --help` itself, so a new command must be
/// documented too.
@Suite struct CLIReferenceTests {
    static let reference: String = String(decoding: TestFiles.read(Fixtures.root + "/../docs/CLI.md"), as: UTF8.self)

    /// The synopsis: the first fenced block of CLI.md.
    static var synopsis: [String] {
        let parts = reference.components(separatedBy: "```")
        return parts.count > 1 ? parts[1].split(separator: "\n").map(String.init) : []
    }

    /// `[name options] = …` definitions in the synopsis.
    static var groups: [String: String] {
        var out: [String: String] = [:]
        for line in synopsis {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("["), let close = t.firstIndex(of: "]") else { continue }
            let rest = t[t.index(after: close)...].trimmingCharacters(in: .whitespaces)
            guard rest.hasPrefix("=") else { continue }
            out[String(t[t.index(after: t.startIndex)..<close])] = rest.dropFirst().trimmingCharacters(in: .whitespaces)
        }
        return out
    }

    static func isDefinition(_ line: String) -> Bool {
        let t = line.trimmingCharacters(in: .whitespaces)
        guard t.hasPrefix("["), let close = t.firstIndex(of: "]") else { return false }
        return t[t.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("=")
    }

    /// Each command's synopsis text with its option groups expanded (all lines of a command joined).
    static func documented(_ command: [String]) -> String {
        let prefix = "tlora " + command.joined(separator: " ") + " "
        var text = ""
        var inside = false
        for line in synopsis {
            if line.hasPrefix("tlora ") { inside = line.hasPrefix(prefix) || line == prefix.dropLast() }
            else if !line.hasPrefix(" ") || Self.isDefinition(line) { inside = false }
            if inside { text += " " + line }
        }
        // Expand groups until none is left.
        for _ in 0..<5 {
            for (name, body) in groups { text = text.replacingOccurrences(of: "[\(name)]", with: body) }
        }
        return text
    }

    /// Long options in a text, `-o` counted as `--output`; with the values written `a|b|c` after it.
    static func options(inSynopsis text: String) -> [String: Set<String>?] {
        var out: [String: Set<String>?] = [:]
        let tokens = text.replacingOccurrences(of: "[", with: " ").replacingOccurrences(of: "]", with: " ").split(separator: " ").map(String.init)
        for (i, t) in tokens.enumerated() {
            let name: String
            if t == "-o" { name = "--output" } else if t.hasPrefix("--") { name = t } else { continue }
            var values: Set<String>? = nil
            if i + 1 < tokens.count, tokens[i + 1].contains("|"), !tokens[i + 1].hasPrefix("-") {
                values = Set(tokens[i + 1].split(separator: "|").map(String.init))
            }
            if let existing = out[name], let e = existing { out[name] = values.map { $0.union(e) } ?? e } else { out[name] = values }
        }
        return out
    }

    /// Long options in `--help` with their listed values (`(values: a, b; default: a)`, which
    /// ArgumentParser may wrap over several lines).
    static func options(inHelp help: String) -> [String: Set<String>?] {
        var entries: [(name: String, text: String)] = []
        var inOptions = false
        for line in help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if !line.hasPrefix(" ") && !line.isEmpty { inOptions = line.hasPrefix("OPTIONS:"); continue }
            guard inOptions else { continue }
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("-"), let name = t.split(separator: " ").map({ $0.trimmingCharacters(in: CharacterSet(charactersIn: ",")) }).first(where: { $0.hasPrefix("--") }) {
                entries.append((name, t))
            } else if !entries.isEmpty {
                entries[entries.count - 1].text += " " + t
            }
        }
        var out: [String: Set<String>?] = [:]
        for (name, text) in entries where name != "--help" && name != "--version" {
            var values: Set<String>? = nil
            if let v = text.range(of: "(values: ") {
                let list = text[v.upperBound...].prefix { $0 != ";" && $0 != ")" }
                values = Set(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            }
            out[name] = values
        }
        return out
    }

    /// Every leaf command, from the binary's own help.
    static func commands() throws -> [[String]] {
        func subcommands(_ path: [String]) throws -> [String] {
            let help = try CommandRunner.tlora(path + ["--help"]).stdout
            guard let start = help.range(of: "SUBCOMMANDS:") else { return [] }
            // The list ends at the first blank line.
            let list = help[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false).dropFirst().prefix { !$0.isEmpty }
            return list.compactMap { line in
                // Names are indented by two spaces; wrapped descriptions by more.
                guard line.hasPrefix("  "), !line.hasPrefix("   "), let word = line.split(separator: " ").first, word != "help" else { return nil }
                return String(word)
            }
        }
        var leaves: [[String]] = []
        for c in try subcommands([]) {
            let nested = try subcommands([c])
            if nested.isEmpty { leaves.append([c]) } else { leaves += nested.map { [c, $0] } }
        }
        return leaves
    }

    @Test func everyCommandAndOptionIsDocumentedAsTheHelpSays() throws {
        let commands = try Self.commands()
        #expect(commands.count >= 8, "\(commands)")
        for command in commands {
            let name = command.joined(separator: " ")
            let help = try CommandRunner.tlora(command + ["--help"])
            #expect(help.status == 0)
            let inHelp = Self.options(inHelp: help.stdout)
            let text = Self.documented(command)
            #expect(!text.isEmpty, "docs/CLI.md has no synopsis for `tlora \(name)`")
            let inDoc = Self.options(inSynopsis: text)
            let missing = Set(inHelp.keys).subtracting(inDoc.keys).sorted()
            let extra = Set(inDoc.keys).subtracting(inHelp.keys).sorted()
            #expect(missing.isEmpty, "`tlora \(name)`: options in --help but not in docs/CLI.md: \(missing)")
            #expect(extra.isEmpty, "`tlora \(name)`: options in docs/CLI.md but not in --help: \(extra)")
            for (option, docValues) in inDoc {
                guard let docValues, let helpValues = inHelp[option] ?? nil else { continue }
                #expect(docValues == helpValues, "`tlora \(name) \(option)`: docs/CLI.md says \(docValues.sorted()), --help \(helpValues.sorted())")
            }
            // Every command has its own section too.
            #expect(Self.reference.contains("\n## \(name)\n"), "docs/CLI.md has no section `## \(name)`")
        }
    }
}
