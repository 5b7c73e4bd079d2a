import Testing
import TLoRAIO
import _TLoRATestSupport

@Suite struct XXH64Tests {
    /// Reference values from the python `xxhash` package (xxHash 0.8).
    @Test(arguments: [
        ("", "ef46db3751d8e999"),
        ("abc", "44bc2cf5ad770999"),
        ("Nobody inspects the spammish repetition", "fbcea83c8a378bf1"),
    ])
    func matchesReferenceVectors(input: String, expected: String) {
        #expect(XXH64.hex(XXH64.hash(Array(input.utf8))) == expected)
    }

    @Test func longInputMatchesReference() {
        let bytes = (0..<3).flatMap { _ in (0..<256).map { UInt8($0) } }
        #expect(XXH64.hex(XXH64.hash(bytes)) == "8e03c838c596036f")
    }

    @Test func streamingEqualsOneShotForEverySplit() {
        var g = SeededGenerator(seed: 11)
        let bytes = RandomTensors.bytes(200, using: &g)
        let whole = XXH64.hash(bytes)
        for split in 0...bytes.count {
            var h = XXH64()
            bytes.withUnsafeBytes { raw in
                h.update(UnsafeRawBufferPointer(rebasing: raw[0..<split]))
                h.update(UnsafeRawBufferPointer(rebasing: raw[split...]))
            }
            #expect(h.finalize() == whole)
        }
    }

    @Test func hexParsingIsStrict() {
        #expect(XXH64.parseHex("ef46db3751d8e999") == 0xef46_db37_51d8_e999)
        #expect(XXH64.parseHex("EF46DB3751D8E999") == nil)
        #expect(XXH64.parseHex("ef46db3751d8e99") == nil)
        #expect(XXH64.parseHex("+f46db3751d8e999") == nil)
    }
}
