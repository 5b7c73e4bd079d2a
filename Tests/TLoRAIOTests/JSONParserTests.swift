import Testing
import TLoRAIO

@Suite struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let v = try JSONParser.parse(#" {"a": [1, -2.5e3, true, false, null], "b": {"c": "x\u00e9\ud83d\ude00\n"}} "#)
        #expect(v["a"]?.arrayValue?.count == 5)
        #expect(v["a"]?.arrayValue?[0].intValue == 1)
        #expect(v["a"]?.arrayValue?[1].doubleValue == -2500)
        #expect(v["a"]?.arrayValue?[1].intValue == nil)
        #expect(v["b"]?["c"]?.stringValue == "xé😀\n")
    }

    @Test func keepsKeyOrderAndRoundTrips() throws {
        let text = #"{"z":1,"a":{"y":[1,2],"b":"q\"uote"},"m":null}"#
        let v = try JSONParser.parse(text)
        #expect(v.objectValue?.keys == ["z", "a", "m"])
        #expect(JSONWriter.string(v) == text)
        #expect(try JSONParser.parse(JSONWriter.string(v, indent: 2)) == v)
    }

    @Test func bigIntegersAreExact() throws {
        #expect(try JSONParser.parse("9223372036854775807").intValue == Int.max)
        #expect(try JSONParser.parse("9223372036854775808").intValue == nil)
    }

    static let invalidTexts: [(String, JSONError.Code)] = [
        ("{\"a\":1,\"a\":2}", .duplicateKey),
        ("[1,]", .unexpectedCharacter),
        ("01", .invalidNumber),
        ("1.", .invalidNumber),
        ("\"\\ud800\"", .invalidString),
        ("\"\\udc00\"", .invalidString),
        ("\"a\u{01}\"", .invalidString),
        ("{} x", .trailingData),
        ("", .truncated),
        ("[", .truncated),
        ("\"abc", .truncated),
        ("tru", .truncated),
        ("\"\\x\"", .invalidString),
    ]

    @Test(arguments: invalidTexts)
    func rejectsInvalidText(text: String, code: JSONError.Code) {
        #expect(performing: { try JSONParser.parse(text) }, throws: { ($0 as? JSONError)?.code == code })
    }

    @Test func rejectsInvalidUTF8() {
        #expect(performing: { try JSONParser.parse([0x22, 0xFF, 0x22]) }, throws: { ($0 as? JSONError)?.code == .invalidString })
    }

    @Test func boundsNestingWithoutRecursingDeeply() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(performing: { try JSONParser.parse(deep) }, throws: { ($0 as? JSONError)?.code == .tooDeep })
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect((try? JSONParser.parse(ok)) != nil)
    }

    @Test func doublesRoundTripThroughText() throws {
        for d in [0.1, 1e-5, 123456.789, 2.0, -0.0, 1e300, 5e-324] {
            let text = JSONWriter.string(JSONValue(d))
            #expect(try JSONParser.parse(text).doubleValue == d, "\(d) → \(text)")
        }
    }
}
