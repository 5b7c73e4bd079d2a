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

    @Test(arguments: [
        ("{\"a\":1,\"a\":2}", "duplicate key"),
        ("[1,]", "unexpected character"),
        ("01", "leading zero"),
        ("1.", "digit expected"),
        ("\"\\ud800\"", "lone high surrogate"),
        ("\"\\udc00\"", "lone low surrogate"),
        ("\"a\u{01}\"", "control character"),
        ("{} x", "unexpected data"),
        ("", "unexpected end"),
        ("[", "unexpected end"),
        ("\"abc", "unterminated string"),
        ("tru", "truncated literal"),
        ("\"\\x\"", "invalid escape"),
    ])
    func rejectsInvalidText(text: String, reason: String) {
        do {
            _ = try JSONParser.parse(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.description.contains(reason), "\(text): \(error)")
        }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONError.self) { try JSONParser.parse([0x22, 0xFF, 0x22]) }
    }

    @Test func boundsNestingWithoutRecursingDeeply() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONError.self) { try JSONParser.parse(deep) }
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
