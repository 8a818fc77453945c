import Testing
@testable import PriviaEngines

final class CountingSink: GenerationSink {
    var tokens: [String] = []
    var stopAfter: Int?
    func token(_ text: String) -> Bool {
        tokens.append(text)
        return stopAfter.map { tokens.count < $0 } ?? true
    }
    func keepGoing() -> Bool { stopAfter.map { tokens.count < $0 } ?? true }
    var waits = 0
    func willWait() { waits += 1 }
}

@Suite struct StubEngineTests {
    let context = EngineContext(userID: "u", conversationID: "c", history: [ChatMessage(role: "user", content: "hi there")])

    @Test func streamsTheReplyWordByWord() throws {
        let sink = CountingSink()
        let result = try StubEngine().generate(context, sink: sink)
        #expect(sink.tokens.count > 10)
        #expect(sink.tokens.joined() == StubEngine.reply)
        #expect(result.content == StubEngine.reply && result.mode == "stub")
        #expect(result.usage?.estimated == true)
    }

    /// The usage a stub turn records: words in, words out.
    @Test func countsTheHistorysWordsAndItsOwn() throws {
        let history = [ChatMessage(role: "user", content: "  two  words "), ChatMessage(role: "assistant", content: "three more words"),
                       ChatMessage(role: "user", content: "")]
        let result = try StubEngine().generate(EngineContext(userID: "u", conversationID: "c", history: history), sink: CountingSink())
        #expect(result.usage?.inputTokens == 5)
        #expect(result.usage?.outputTokens == StubEngine.reply.split(separator: " ").count)
    }

    /// Only a stub with a delay between tokens is long work for the carrier (see ActiveThreads).
    @Test func saysItWillWaitOnlyWhenItHasADelay() throws {
        let immediate = CountingSink()
        _ = try StubEngine().generate(context, sink: immediate)
        #expect(immediate.waits == 0)
        let delayed = CountingSink()
        delayed.stopAfter = 2
        _ = try StubEngine(tokenDelayMilliseconds: 1).generate(context, sink: delayed)
        #expect(delayed.waits == 1)
    }

    @Test func stopsWhenTheSinkSaysSo() throws {
        let sink = CountingSink()
        sink.stopAfter = 3
        let result = try StubEngine(tokenDelayMilliseconds: 5).generate(context, sink: sink)
        #expect(sink.tokens.count == 3)
        #expect(result.content == sink.tokens.prefix(2).joined())
    }
}
