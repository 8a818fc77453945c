import Testing
@testable import PriviaSupport

@Suite struct SSEParserTests {
    private func parse(_ text: String) throws -> [SSEEvent] {
        var parser = SSEParser()
        return try parser.feed(Array(text.utf8))
    }

    @Test func unnamedEventsAreMessages() throws {
        #expect(try parse("data: The \n\ndata:  \n\n") == [SSEEvent(data: "The "), SSEEvent(data: " ")])
    }

    @Test func multiLineDataIsJoinedWithNewlines() throws {
        #expect(try parse("data: line one\ndata: line two\ndata:\n\n") == [SSEEvent(data: "line one\nline two\n")])
    }

    @Test func namedEventsAndTheirReset() throws {
        let stream = "event: sources\ndata: [\"a\"]\n\ndata: tok\n\nevent: done\ndata: {}\n\n"
        #expect(try parse(stream) == [
            SSEEvent(type: "sources", data: "[\"a\"]"), SSEEvent(data: "tok"), SSEEvent(type: "done", data: "{}"),
        ])
    }

    @Test func commentsAndUnknownFieldsAreIgnored() throws {
        #expect(try parse(": ping\n\n: ping\nid: 4\nretry: 10\ndata: x\n\n") == [SSEEvent(data: "x")])
    }

    @Test func eventWithoutDataDispatchesNothing() throws {
        #expect(try parse("event: done\n\ndata: y\n\n") == [SSEEvent(data: "y")])
    }

    @Test func spaceAfterColonIsOptionalAndOnlyOneIsDropped() throws {
        #expect(try parse("data:x\n\ndata:  two\n\ndata\n\n") == [SSEEvent(data: "x"), SSEEvent(data: " two"), SSEEvent(data: "")])
    }

    @Test func allLineEndings() throws {
        let expected = [SSEEvent(type: "done", data: "a\nb")]
        #expect(try parse("event: done\r\ndata: a\r\ndata: b\r\n\r\n") == expected)
        #expect(try parse("event: done\rdata: a\rdata: b\r\r") == expected)
        #expect(try parse("event: done\ndata: a\r\ndata: b\r\r\n") == expected)
    }

    @Test func chunkBoundariesAnywhere() throws {
        let stream = "\u{FEFF}: ping\r\n\r\ndata: héllo 👋\r\ndata: second\r\n\r\nevent: sources\rdata: [1]\r\rdata: z\n\n"
        let bytes = Array(stream.utf8)
        var whole = SSEParser()
        let expected = try whole.feed(bytes)
        #expect(expected == [SSEEvent(data: "héllo 👋\nsecond"), SSEEvent(type: "sources", data: "[1]"), SSEEvent(data: "z")])
        for cut in 1..<bytes.count {
            var parser = SSEParser()
            let events = try parser.feed(bytes[..<cut]) + parser.feed(bytes[cut...])
            #expect(events == expected, "cut at \(cut)")
        }
        var parser = SSEParser()
        var oneByOne: [SSEEvent] = []
        for byte in bytes { oneByOne += try parser.feed([byte]) }
        #expect(oneByOne == expected)
    }

    @Test func incompleteEventIsHeldBack() throws {
        var parser = SSEParser()
        #expect(try parser.feed(Array("data: a\n".utf8)).isEmpty)
        #expect(try parser.feed(Array("\n".utf8)) == [SSEEvent(data: "a")])
    }

    @Test func endlessLineIsRefused() {
        var parser = SSEParser()
        let line = [UInt8](repeating: UInt8(ascii: "a"), count: SSEParser.maxLineLength + 1)
        #expect(throws: SSEParser.Failure.lineTooLong) { try parser.feed(line) }
    }

    @Test func aStreamEndingWithoutItsBlankLineStillDispatchesItsLastEvent() throws {
        var parser = SSEParser()
        let events = try parser.feed(Array("\u{FEFF}event: error\rdata: a\rdata:b\r\r: note\n\nid: 3\ndata: c\n\ndata: tail".utf8))
        #expect(events == [SSEEvent(type: "error", data: "a\nb"), SSEEvent(data: "c")])
        #expect(try parser.finish() == SSEEvent(data: "tail"))
        #expect(try parser.finish() == nil)
    }
}
