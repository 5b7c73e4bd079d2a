import Testing
import TLoRAFormat
import TLoRAIO
import TLoRAModel
import _TLoRATestSupport

/// The places docs/FORMAT.md used to leave open, each settled in the spec (§2–§4) and decided here on
/// files built by hand. `python/tests/test_spec_rules.py` has the same cases for the Python reader and
/// checks that both readers agree.
@Suite struct SpecSettlementTests {
    typealias H = HostileHeaderTests

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let bytes: [UInt8]
        /// nil: the file is intact (`verify` passes); otherwise a fragment of the first problem.
        let problem: String?
        var testDescription: String { name }
    }

    static let aBytes = H.aBytes, bBytes = H.bBytes
    static let zstdEmpty: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x20, 0x00, 0x01, 0x00, 0x00]
    static let zstdA: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x20, 0x10, 0x81, 0x00, 0x00] + aBytes
    static let zstdANoSize: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00, 0x81, 0x00, 0x00] + aBytes
    static let skippable: [UInt8] = [0x50, 0x2A, 0x4D, 0x18, 0, 0, 0, 0]

    static func example(_ edit: (String) -> String = { $0 }, blobs: [[UInt8]]? = nil) -> [UInt8] {
        SpecBuilder.file(json: edit(H.specExample()), blobs: blobs ?? [aBytes, bBytes])
    }

    /// The example plus one more tensor `r0` (at data offset 128) replacing `target`.
    static func withReplacement(target: String, shape: String, codec: String = "raw", stored: [UInt8], layout: String = "") -> [UInt8] {
        let entry = SpecBuilder.tensorJSON(name: "r0", shape: shape, codec: codec, offset: 128, length: stored.count, bytes: stored)
        return example({
            $0.replacingFirst("}],\"modules\"", with: "},\(entry)],\"modules\"")
                .replacingFirst("\"replaced_tensors\":[]", with: "\"replaced_tensors\":[{\"target\":\"\(target)\",\"tensor\":\"r0\"}]")
                .replacingFirst("\"shape\":[2,4],", with: "\"shape\":[2,4],\(layout)")
        }, blobs: [aBytes, bBytes, stored])
    }

    /// A Tucker group (core [1,1,1], modes column:in 4, row:out 2, member 2) used by `modules`.
    static func group(rowExtra: String = "", memberExtra: String = "", rowName: String = "out", used: Bool = true) -> [UInt8] {
        let core = StoredTensor([1], shape: [1, 1, 1]).bytes.array
        let f0 = StoredTensor([1, 2, 3, 4], shape: [4, 1]).bytes.array
        let f1 = StoredTensor([1, 2], shape: [2, 1]).bytes.array
        let f2 = StoredTensor([1, 2], shape: [2, 1]).bytes.array
        let tensors = [SpecBuilder.tensorJSON(name: "g0.core", shape: "[1,1,1]", offset: 0, length: 4, bytes: core),
                       SpecBuilder.tensorJSON(name: "g0.f0", shape: "[4,1]", offset: 64, length: 16, bytes: f0),
                       SpecBuilder.tensorJSON(name: "g0.f1", shape: "[2,1]", offset: 128, length: 8, bytes: f1),
                       SpecBuilder.tensorJSON(name: "g0.f2", shape: "[2,1]", offset: 192, length: 8, bytes: f2)].joined(separator: ",")
        let modules = used ? "[{\"name\":\"m\",\"shape\":[2,4],\"scale\":1,\"update\":{\"type\":\"tucker_slice\",\"group\":\"g\",\"index\":[0]}}]" : "[]"
        let json = "{\"format\":\"tlora\",\"version\":\"1.0\",\"tensors\":[\(tensors)],\"modules\":\(modules),"
            + "\"tucker_groups\":[{\"name\":\"g\",\"core\":\"g0.core\",\"factors\":[\"g0.f0\",\"g0.f1\",\"g0.f2\"],\"modes\":["
            + "{\"role\":\"column\",\"name\":\"in\"},{\"role\":\"row\",\"name\":\"\(rowName)\"\(rowExtra)},{\"role\":\"member\",\"name\":\"p\"\(memberExtra)}]}]}"
        return SpecBuilder.file(json: json, blobs: [core, f0, f1, f2])
    }

    /// The example with tensor A's bytes (and checksum) replaced, so only a value rule can fail.
    static func exampleWithA(_ a: [UInt8]) -> [UInt8] {
        SpecBuilder.file(json: H.specExample().replacingFirst(XXH64.hex(XXH64.hash(aBytes)), with: XXH64.hex(XXH64.hash(a))), blobs: [a, bBytes])
    }

    static func features(_ list: String) -> [UInt8] { example { $0.replacingFirst("\"required_features\":[]", with: "\"required_features\":\(list)") } }
    static func module(_ extra: String) -> [UInt8] { example { $0.replacingFirst("\"update\":{", with: "\(extra),\"update\":{") } }
    static func top(_ extra: String) -> [UInt8] { example { $0.replacingFirst("\"metadata\":", with: "\(extra),\"metadata\":") } }
    static func replace(_ a: String, _ b: String) -> [UInt8] { example { $0.replacingFirst(a, with: b) } }

    static let cases: [Case] = {
        let zeros8 = [UInt8](repeating: 0, count: 32), zeros9 = [UInt8](repeating: 0, count: 36)
        let aHex = XXH64.hex(XXH64.hash(aBytes))
        let aHexReversed = String(stride(from: 14, through: 0, by: -2).map { i in
            String(aHex[aHex.index(aHex.startIndex, offsetBy: i)..<aHex.index(aHex.startIndex, offsetBy: i + 2)]) }.joined())
        let nanA = StoredTensor([1, .nan, 3, 4], shape: [1, 4]).bytes.array
        let infB = StoredTensor([.infinity, 1], shape: [2, 1]).bytes.array
        func nested(_ n: Int) -> [UInt8] { top("\"x\":" + String(repeating: "[", count: n) + String(repeating: "]", count: n)) }
        return [
            Case(name: "whitespace around the JSON", bytes: SpecBuilder.file(json: " \n" + H.specExample() + "\t", blobs: [aBytes, bBytes]), problem: nil),
            Case(name: "NaN value", bytes: exampleWithA(nanA), problem: "NaN or infinite"),
            Case(name: "infinite value", bytes: SpecBuilder.file(json: H.specExample().replacingFirst(XXH64.hex(XXH64.hash(bBytes)), with: XXH64.hex(XXH64.hash(infB))), blobs: [aBytes, infB]), problem: "NaN or infinite"),
            Case(name: "-0 is not an integer", bytes: replace("\"offset\":0", "\"offset\":-0"), problem: "expected an integer"),
            Case(name: "-0 is a number", bytes: replace("\"scale\":2", "\"scale\":-0"), problem: nil),
            Case(name: "replacement [out, in]", bytes: withReplacement(target: "m.weight", shape: "[2,4]", stored: zeros8), problem: nil),
            Case(name: "replacement of another shape", bytes: withReplacement(target: "m.weight", shape: "[3,3]", stored: zeros9), problem: "updates it as [2, 4]"),
            Case(name: "replacement transposed", bytes: withReplacement(target: "m.weight", shape: "[4,2]", stored: zeros8), problem: "updates it as [2, 4]"),
            Case(name: "replacement [in, out] for in_out", bytes: withReplacement(target: "m.weight", shape: "[4,2]", stored: zeros8, layout: "\"layout\":\"in_out\","), problem: nil),
            Case(name: "conversion with method only", bytes: module("\"conversion\":{\"method\":\"tt-svd\"}"), problem: nil),
            Case(name: "conversion without method", bytes: module("\"conversion\":{\"rel_error\":0.1}"), problem: "method: missing"),
            Case(name: "conversion error 1e999", bytes: module("\"conversion\":{\"method\":\"x\",\"rel_error\":1e999}"), problem: "finite"),
            Case(name: "conversion error negative", bytes: module("\"conversion\":{\"method\":\"x\",\"max_rel_error\":-0.5}"), problem: "must not be negative"),
            Case(name: "name of 1024 bytes", bytes: replace("\"name\":\"m\"", "\"name\":\"\(String(repeating: "é", count: 512))\""), problem: nil),
            Case(name: "name of 1025 bytes", bytes: replace("\"name\":\"m\"", "\"name\":\"\(String(repeating: "é", count: 512))x\""), problem: "1 to 1024 bytes"),
            Case(name: "empty target", bytes: module("\"target\":\"\""), problem: "1 to 1024 bytes"),
            Case(name: "empty mode name", bytes: group(rowName: ""), problem: nil),
            Case(name: "known feature listed, unused", bytes: features("[\"tt-index-order\"]"), problem: nil),
            Case(name: "features sorted", bytes: features("[\"joint-train\",\"tt-index-order\"]"), problem: nil),
            Case(name: "features unsorted", bytes: features("[\"tt-index-order\",\"joint-train\"]"), problem: "sorted"),
            Case(name: "feature repeated", bytes: features("[\"tt-index-order\",\"tt-index-order\"]"), problem: "sorted"),
            Case(name: "depth 64 (header object is 1)", bytes: nested(63), problem: nil),
            Case(name: "depth 65", bytes: nested(64), problem: "nesting deeper than 64"),
            Case(name: "byte-order mark", bytes: SpecBuilder.file(header: [0xEF, 0xBB, 0xBF] + Array(H.specExample().utf8), blobs: [aBytes, bBytes]), problem: "invalid JSON"),
            Case(name: "lone high surrogate", bytes: replace("\"spec\"", "\"\\ud800\""), problem: "surrogate"),
            Case(name: "lone low surrogate", bytes: replace("\"spec\"", "\"\\udc00x\""), problem: "surrogate"),
            Case(name: "surrogate pair", bytes: replace("\"spec\"", "\"\\ud83d\\ude00\""), problem: nil),
            Case(name: "labels on a member mode", bytes: group(memberExtra: ",\"labels\":[\"q\",\"v\"]"), problem: nil),
            Case(name: "labels on a row mode", bytes: group(rowExtra: ",\"labels\":[\"a\",\"b\"]"), problem: "only a member mode has labels"),
            Case(name: "empty labels", bytes: group(memberExtra: ",\"labels\":[]"), problem: "one label per member"),
            Case(name: "labels miscounted", bytes: group(memberExtra: ",\"labels\":[\"q\"]"), problem: "1 labels for 2 members"),
            Case(name: "group no module uses", bytes: group(used: false), problem: "is used by no module"),
            Case(name: "xxh64 upper case", bytes: replace(aHex, aHex.uppercased()), problem: "lowercase hex"),
            Case(name: "xxh64 byte-reversed", bytes: replace(aHex, aHexReversed), problem: "checksum"),
            Case(name: "zstd empty tensor", bytes: withReplacement(target: "m.bias", shape: "[0]", codec: "zstd", stored: zstdEmpty), problem: nil),
            Case(name: "zstd skippable frame as empty tensor", bytes: withReplacement(target: "m.bias", shape: "[0]", codec: "zstd", stored: skippable), problem: "skippable"),
            Case(name: "zstd skippable frame before data", bytes: SpecBuilder.file(json: H.specExample().replacingFirst("\"codec\":\"raw\",\"offset\":0,\"length\":16,\"xxh64\":\"\(aHex)\"", with: "\"codec\":\"zstd\",\"offset\":0,\"length\":\(skippable.count + zstdA.count),\"xxh64\":\"\(XXH64.hex(XXH64.hash(skippable + zstdA)))\""), blobs: [skippable + zstdA, bBytes]), problem: "zstd"),
            Case(name: "zstd without content size", bytes: SpecBuilder.file(json: H.specExample().replacingFirst("\"codec\":\"raw\",\"offset\":0,\"length\":16,\"xxh64\":\"\(aHex)\"", with: "\"codec\":\"zstd\",\"offset\":0,\"length\":\(zstdANoSize.count),\"xxh64\":\"\(XXH64.hex(XXH64.hash(zstdANoSize)))\""), blobs: [zstdANoSize, bBytes]), problem: "does not declare its size"),
            Case(name: "zstd data frame", bytes: SpecBuilder.file(json: H.specExample().replacingFirst("\"codec\":\"raw\",\"offset\":0,\"length\":16,\"xxh64\":\"\(aHex)\"", with: "\"codec\":\"zstd\",\"offset\":0,\"length\":\(zstdA.count),\"xxh64\":\"\(XXH64.hex(XXH64.hash(zstdA)))\""), blobs: [zstdA, bBytes]), problem: nil),
            Case(name: "null optionals", bytes: module("\"dora_magnitude\":null,\"target\":null,\"conversion\":null,\"kind\":null"), problem: nil),
            Case(name: "null required features", bytes: features("null"), problem: nil),
            Case(name: "null for a required key", bytes: replace("\"scale\":2", "\"scale\":null"), problem: "finite number"),
            Case(name: "number of 400 bytes", bytes: replace("\"scale\":2", "\"scale\":2." + String(repeating: "0", count: 398)), problem: nil),
            Case(name: "number of 401 bytes", bytes: replace("\"scale\":2", "\"scale\":2." + String(repeating: "0", count: 399)), problem: "number literal too long"),
        ]
    }()

    @Test(arguments: cases) func settled(_ c: Case) throws {
        let dir = TemporaryDirectory()
        let path = dir.file("case.tlora")
        TestFiles.write(path, c.bytes)
        let report = TLoRAFile.verify(path: path)
        if let fragment = c.problem {
            #expect(!report.isIntact)
            #expect(report.problems.contains { "\($0)".contains(fragment) }, "\(report.problems)")
        } else {
            #expect(report.isIntact, "\(report.problems)")
            _ = try TLoRAFile(path: path).loadAdapter()
        }
    }
}
