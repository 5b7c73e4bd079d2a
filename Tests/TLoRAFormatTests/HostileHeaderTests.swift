import Testing
import TLoRAFormat
import TLoRAIO
import TLoRAModel
import _TLoRATestSupport

/// Builds files by hand, following docs/FORMAT.md only, so the reader is tested against the spec and
/// hostile headers get past the checksum to the rules behind it.
enum SpecBuilder {
    static func file(json: String, blobs: [[UInt8]] = [], major: UInt16 = 1, minor: UInt16 = 0, flags: UInt32 = 0,
                     headerLength: UInt64? = nil, fileLength: UInt64? = nil) -> [UInt8] {
        file(header: Array(json.utf8), blobs: blobs, major: major, minor: minor, flags: flags, headerLength: headerLength, fileLength: fileLength)
    }

    static func file(header: [UInt8], blobs: [[UInt8]] = [], major: UInt16 = 1, minor: UInt16 = 0, flags: UInt32 = 0,
                     headerLength: UInt64? = nil, fileLength: UInt64? = nil) -> [UInt8] {
        var w = ByteWriter()
        w.write([0x89, 0x54, 0x4C, 0x4F, 0x52, 0x41, 0x0D, 0x0A])
        w.write(major)
        w.write(minor)
        w.write(flags)
        w.write(headerLength ?? UInt64(header.count))
        let dataStart = (32 + header.count + 8 + 63) / 64 * 64
        var dataLength = 0
        for (i, b) in blobs.enumerated() {
            if i > 0 { dataLength = (dataLength + 63) / 64 * 64 }
            dataLength += b.count
        }
        w.write(fileLength ?? UInt64(dataStart + dataLength))
        w.write(header)
        w.write(XXH64.hash(w.bytes))
        w.pad(to: 64)
        for b in blobs {
            w.pad(to: 64)
            w.write(b)
        }
        return w.bytes
    }

    /// Writes `adapter` raw, rewrites its header JSON with `edit`, reopens it: "" when the reader
    /// accepts the edited file, its error message otherwise.
    static func reopenEdited(_ adapter: Adapter, _ edit: (String) -> String) throws -> String {
        try reopenEditedError(adapter, edit).map { "\($0)" } ?? ""
    }

    /// What opening the edited file throws (nil when it opens).
    static func reopenEditedError(_ adapter: Adapter, _ edit: (String) -> String) throws -> (any Error)? {
        let dir = TemporaryDirectory("tlora-edited")
        let path = dir.file("a.tlora")
        try ContainerWriter.write(adapter, to: path, options: WriteOptions(codec: .forced(.raw)))
        let header = try TLoRAFile(path: path).header
        let bytes = TestFiles.read(path)
        let json = String(decoding: bytes[32..<(32 + header.headerLength)], as: UTF8.self)
        let blobs = header.tensors.map { Array(bytes[(header.dataStart + $0.offset)..<(header.dataStart + $0.offset + $0.length)]) }
        let out = dir.file("edited.tlora")
        TestFiles.write(out, file(json: edit(json), blobs: blobs))
        do {
            _ = try TLoRAFile(path: out)
            return nil
        } catch {
            return error
        }
    }

    static func tensorJSON(name: String, dtype: String = "f32", shape: String, codec: String = "raw", offset: Int, length: Int, bytes: [UInt8]) -> String {
        "{\"name\":\"\(name)\",\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"codec\":\"\(codec)\",\"offset\":\(offset),\"length\":\(length),\"xxh64\":\"\(XXH64.hex(XXH64.hash(bytes)))\"}"
    }
}

@Suite struct HostileHeaderTests {
    static let aBytes = StoredTensor([1, 2, 3, 4], shape: [1, 4]).bytes.array
    static let bBytes = StoredTensor([0.5, -0.5], shape: [2, 1]).bytes.array

    /// The example of docs/FORMAT.md: one 2×4 module at rank 1, raw f32.
    static func specExample(moduleExtra: String = "", tensorsOverride: String? = nil, top: String = "") -> String {
        let tensors = tensorsOverride ?? "[" + SpecBuilder.tensorJSON(name: "m0.a", shape: "[1,4]", offset: 0, length: 16, bytes: aBytes) + ","
            + SpecBuilder.tensorJSON(name: "m0.b", shape: "[2,1]", offset: 64, length: 8, bytes: bBytes) + "]"
        return "{\"format\":\"tlora\",\"version\":\"1.0\",\"required_features\":[],\(top)\"metadata\":{\"source_format\":\"spec\"},\"tensors\":\(tensors),"
            + "\"modules\":[{\"name\":\"m\",\"shape\":[2,4],\"scale\":2,"
            + "\"update\":{\"type\":\"low_rank\",\"a\":\"m0.a\",\"b\":\"m0.b\"}\(moduleExtra)}],\"tucker_groups\":[],\"replaced_tensors\":[]}"
    }

    /// The directory must outlive the file for tests that reopen it.
    static let dir = TemporaryDirectory()

    static func open(_ bytes: [UInt8]) throws -> TLoRAFile {
        let path = dir.file("h-\(UInt64.random(in: 0...UInt64.max)).tlora")
        TestFiles.write(path, bytes)
        return try TLoRAFile(path: path)
    }

    static func problem(_ bytes: [UInt8]) -> String {
        do {
            _ = try open(bytes)
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    @Test func specExampleIsReadAndMatchesTheWriter() throws {
        let bytes = SpecBuilder.file(json: Self.specExample(), blobs: [Self.aBytes, Self.bBytes])
        let file = try Self.open(bytes)
        let adapter = try file.loadAdapter()
        #expect(adapter.modules.count == 1)
        #expect(adapter.modules[0].scale == 2)
        #expect(adapter.modules[0].update == .lowRank(a: StoredTensor([1, 2, 3, 4], shape: [1, 4]), b: StoredTensor([0.5, -0.5], shape: [2, 1])))
        #expect(TLoRAFile.verify(path: file.path).isIntact)

        // Our writer produces exactly these bytes for the same adapter.
        let dir = TemporaryDirectory()
        let written = dir.file("w.tlora")
        try ContainerWriter.write(adapter, to: written, options: WriteOptions(codec: .forced(.raw)))
        #expect(TestFiles.read(written) == bytes)
    }

    @Test func unknownFieldsAreIgnored() throws {
        let json = Self.specExample(moduleExtra: ",\"future_field\":{\"x\":[1,2]}", top: "\"producer_notes\":\"hi\",")
        _ = try Self.open(SpecBuilder.file(json: json, blobs: [Self.aBytes, Self.bBytes])).loadAdapter()
    }

    @Test func newerMajorVersionIsRefusedClearly() {
        let bytes = SpecBuilder.file(json: Self.specExample(), blobs: [Self.aBytes, Self.bBytes], major: 2)
        #expect(Self.problem(bytes).contains("format version 2.0 is newer than this tlora reads"))
    }

    @Test func newerMinorVersionIsReadWhenNoUnknownFeatureIsRequired() throws {
        let json = Self.specExample().replacingFirst("\"version\":\"1.0\"", with: "\"version\":\"1.7\"")
        _ = try Self.open(SpecBuilder.file(json: json, blobs: [Self.aBytes, Self.bBytes], minor: 7)).loadAdapter()
    }

    @Test func unknownRequiredFeatureIsRefused() {
        let json = Self.specExample().replacingFirst("\"required_features\":[]", with: "\"required_features\":[\"int4-blocks\"]")
        #expect(Self.problem(SpecBuilder.file(json: json, blobs: [Self.aBytes, Self.bBytes])).contains("requires features this tlora does not know: int4-blocks"))
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let bytes: [UInt8]
        let expected: String
        var testDescription: String { name }
    }

    static let cases: [Case] = {
        let good = specExample()
        let blobs = [aBytes, bBytes]
        func file(_ json: String) -> [UInt8] { SpecBuilder.file(json: json, blobs: blobs) }
        func replacing(_ a: String, _ b: String) -> [UInt8] { file(good.replacingFirst(a, with: b)) }
        return [
            Case(name: "empty file", bytes: [], expected: "not a .tlora file"),
            Case(name: "wrong magic", bytes: Array("PK\u{3}\u{4}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".utf8), expected: "not a .tlora file"),
            Case(name: "magic only", bytes: [0x89, 0x54, 0x4C, 0x4F, 0x52, 0x41, 0x0D, 0x0A], expected: "truncated: the preamble"),
            Case(name: "header length 2^63", bytes: SpecBuilder.file(json: good, blobs: blobs, headerLength: 1 << 63), expected: "exceeds the limit"),
            Case(name: "header length UInt64.max", bytes: SpecBuilder.file(json: good, blobs: blobs, headerLength: .max), expected: "exceeds the limit"),
            Case(name: "header length past EOF", bytes: SpecBuilder.file(json: good, blobs: blobs, headerLength: 60 << 20), expected: "truncated: the header"),
            Case(name: "file length 2^63", bytes: SpecBuilder.file(json: good, blobs: blobs, fileLength: 1 << 63), expected: "its preamble says"),
            Case(name: "nonzero flags", bytes: SpecBuilder.file(json: good, blobs: blobs, flags: 1), expected: "flags"),
            Case(name: "not JSON", bytes: file("{\"format\" \"tlora\"}"), expected: "invalid JSON"),
            Case(name: "not UTF-8", bytes: SpecBuilder.file(header: Array(good.utf8).map { $0 == UInt8(ascii: "p") ? 0xFF : $0 }, blobs: blobs), expected: "not valid UTF-8"),
            Case(name: "deep nesting", bytes: file(String(repeating: "[", count: 10000)), expected: "nesting deeper"),
            Case(name: "duplicate key", bytes: file(good.replacingFirst("\"format\":\"tlora\",", with: "\"format\":\"tlora\",\"format\":\"tlora\",")), expected: "duplicate key \"format\""),
            Case(name: "duplicate tensor", bytes: replacing("\"name\":\"m0.b\"", "\"name\":\"m0.a\""), expected: "listed twice"),
            Case(name: "unknown dtype", bytes: replacing("\"dtype\":\"f32\"", "\"dtype\":\"q4_k\""), expected: "unknown dtype \"q4_k\""),
            Case(name: "unknown codec", bytes: replacing("\"codec\":\"raw\"", "\"codec\":\"lz4\""), expected: "unknown codec"),
            Case(name: "negative dim", bytes: replacing("\"shape\":[1,4]", "\"shape\":[-1,4]"), expected: "outside"),
            Case(name: "shape product overflows", bytes: replacing("\"shape\":[1,4]", "\"shape\":[4294967296,4294967296]"), expected: "more elements than can be addressed"),
            Case(name: "dim above Int64", bytes: replacing("\"shape\":[1,4]", "\"shape\":[99999999999999999999,1]"), expected: "expected an integer"),
            Case(name: "rank 9", bytes: replacing("\"shape\":[1,4]", "\"shape\":[1,1,1,1,1,1,1,1,4]"), expected: "more than 8 entries"),
            Case(name: "raw length mismatch", bytes: replacing("\"length\":16", "\"length\":12"), expected: "needs 16"),
            Case(name: "offset misaligned", bytes: replacing("\"offset\":64", "\"offset\":16"), expected: "starts at data offset 16, expected 64"),
            Case(name: "offset negative", bytes: replacing("\"offset\":64", "\"offset\":-64"), expected: "outside"),
            Case(name: "offset huge", bytes: replacing("\"offset\":64", "\"offset\":9223372036854775807"), expected: "expected 64"),
            Case(name: "length past EOF", bytes: replacing("\"codec\":\"raw\",\"offset\":64,\"length\":8", "\"codec\":\"zstd\",\"offset\":64,\"length\":8000"), expected: "extends past the end"),
            Case(name: "raw length past shape", bytes: replacing("\"length\":8", "\"length\":8000"), expected: "stores 8000 bytes but its shape needs 8"),
            Case(name: "zstd bomb", bytes: replacing("\"shape\":[1,4],\"codec\":\"raw\"", "\"shape\":[1099511627776,4],\"codec\":\"zstd\""), expected: "impossible from 16 compressed bytes"),
            Case(name: "bad checksum text", bytes: file(good.replacingFirst("\"xxh64\":\"", with: "\"xxh64\":\"Z")), expected: "16 lowercase hex digits"),
            Case(name: "missing tensor", bytes: replacing("\"a\":\"m0.a\"", "\"a\":\"m0.x\""), expected: "refers to tensor m0.x, which is not in the file"),
            Case(name: "tensor used twice", bytes: replacing("\"b\":\"m0.b\"", "\"b\":\"m0.a\""), expected: "used by both"),
            Case(name: "rank mismatch", bytes: replacing("\"shape\":[2,4]", "\"shape\":[2,5]"), expected: "the layer has 5 inputs"),
            Case(name: "scale not finite", bytes: replacing("\"scale\":2", "\"scale\":1e999"), expected: "expected a finite number"),
            Case(name: "unknown update", bytes: replacing("\"type\":\"low_rank\"", "\"type\":\"loha\""), expected: "unknown update type \"loha\""),
            Case(name: "wrong format name", bytes: replacing("\"format\":\"tlora\"", "\"format\":\"gguf\""), expected: "must be \"tlora\""),
            Case(name: "version text mismatch", bytes: replacing("\"version\":\"1.0\"", "\"version\":\"1.1\""), expected: "does not match the preamble"),
            Case(name: "missing tensors", bytes: file(good.replacingFirst("\"tensors\":", with: "\"tensorz\":")), expected: "tensors: missing"),
            Case(name: "metadata not strings", bytes: replacing("\"source_format\":\"spec\"", "\"source_format\":7"), expected: "expected a string"),
        ]
    }()

    @Test(arguments: cases)
    func hostileHeaderIsRefusedWithItsReason(c: Case) {
        let message = Self.problem(c.bytes)
        #expect(message.contains(c.expected), "\(c.name): \(message)")
        if c.expected != "accepted" { #expect(message.hasPrefix("/tmp/"), "message must name the file: \(message)") }
    }
}

