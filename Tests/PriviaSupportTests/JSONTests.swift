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

    /// JSON text is UTF-8 and its strings are Unicode: text that is neither is refused, not
    /// repaired with U+FFFD.
    @Test func rejectsTextThatIsNotUnicode() throws {
        let notUTF8: [[UInt8]] = [
            [0xE9],              // Latin-1 é
            [0xC3],              // a sequence cut short
            [0xC0, 0x80],        // an overlong NUL
            [0xED, 0xA0, 0x80],  // a surrogate encoded as UTF-8
            [0xF4, 0x90, 0x80, 0x80],  // past U+10FFFF
        ]
        for bytes in notUTF8 {
            #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Array(#"{"q":"a"#.utf8) + bytes + Array(#""}"#.utf8)) }
            #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Array(#"{""#.utf8) + bytes + Array(#"":1}"#.utf8)) }
        }
        for escape in [#""\ud800""#, #""\udc00""#, #""\ud800x""#, #""\ud800\u0041""#, #""\ud800\ud800""#, #""\udfff\ud800""#] {
            #expect(throws: JSONParser.Failure.self, "\(escape)") { try JSONParser.parse(escape) }
        }
        // What the parser keeps: a pair is one character, U+0000 is a character too.
        #expect(try JSONParser.parse(#""\ud800\udc00""#) == .string("\u{10000}"))
        #expect(try JSONParser.parse(#""a\u0000b""#).stringValue?.utf8.count == 3)
        #expect(try JSONParser.parse(Array(#""é🙂""#.utf8)) == .string("é🙂"))
    }
}
