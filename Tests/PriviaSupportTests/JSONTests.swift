import Testing
@testable import PriviaSupport

@Suite struct JSONTests {
    @Test func roundTripsEscapesAndUnicode() throws {
        let value: JSON = ["text": "line\n\"quoted\" \\ tab\t\u{1} é 🙂", "n": 42, "x": 1.5, "ok": true, "none": nil, "list": [1, "a"]]
        #expect(try JSONParser.parse(value.encoded()) == value)
        #expect(try JSONParser.parse(#"{"s":"\u00e9\ud83d\ude42"}"#)["s"]?.stringValue == "é🙂")
    }

    @Test func integersAreWrittenAsTheirDecimalDigits() throws {
        for value in [0, 7, -7, 10, -10, 1_234_567_890, Int.max, Int.min] {
            var out = JSONWriter()
            out.int(value)
            #expect(String(decoding: out.bytes, as: UTF8.self) == String(value))
        }
    }

    @Test func rejectsMalformedInput() {
        for text in ["", "{", #"{"a":}"#, "[1,]", "01x", #"{"a":1} x"#, "\"\u{1}\"", "tru"] {
            #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(text) }
        }
    }
}
