import Testing
@testable import PriviaEngines

@Suite struct StubEngineTests {
    let context = EngineContext(userID: "u", conversationID: "c", history: [ChatMessage(role: .user, content: "hi there")])

    @Test func streamsTheReplyWordByWord() throws {
        let sink = RecordingSink()
        let result = try StubEngine().generate(context, sink: sink)
        #expect(sink.tokens.count > 10)
        #expect(sink.text == StubEngine.reply)
        #expect(sink.answer == StubEngine.reply && result.mode == .stub)
        #expect(result.usage?.estimated == true)
    }

    /// The usage a stub turn records: words in, words out.
    @Test func countsTheHistorysWordsAndItsOwn() throws {
        let history = [ChatMessage(role: .user, content: "  two  words "), ChatMessage(role: .assistant, content: "three more words"),
                       ChatMessage(role: .user, content: "")]
        let result = try StubEngine().generate(EngineContext(userID: "u", conversationID: "c", history: history), sink: RecordingSink())
        #expect(result.usage?.inputTokens == 5)
        #expect(result.usage?.outputTokens == StubEngine.reply.split(separator: " ").count)
    }

    /// Only a stub with a delay between tokens is long work for the carrier (see ActiveThreads).
    @Test func saysItWillWaitOnlyWhenItHasADelay() throws {
        let immediate = RecordingSink()
        _ = try StubEngine().generate(context, sink: immediate)
        #expect(immediate.waits == 0)
        let delayed = RecordingSink(stopAfterTokens: 2)
        _ = try StubEngine(tokenDelayMilliseconds: 1).generate(context, sink: delayed)
        #expect(delayed.waits == 1)
    }

    /// A token the sink refuses ends the answer and is not part of it.
    @Test func stopsWhenTheSinkSaysSo() throws {
        let sink = RecordingSink(stopAfterTokens: 2)
        let result = try StubEngine(tokenDelayMilliseconds: 5).generate(context, sink: sink)
        #expect(sink.tokens.count == 2)
        #expect(sink.answer == sink.tokens.joined())
        #expect(result.usage?.outputTokens == 2)
    }
}
