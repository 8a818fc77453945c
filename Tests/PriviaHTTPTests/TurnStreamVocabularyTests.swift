import NIOCore
import PriviaCore
import PriviaEngines
import PriviaSupport
import Testing
@testable import PriviaHTTP
@testable import PriviaRelay

/// An engine that streams two tokens, then fails after them when told to.
final class TwoTokenEngine: ChatEngine, @unchecked Sendable {
    let failure: EngineError?
    init(failing failure: EngineError? = nil) { self.failure = failure }

    func generate(_ context: EngineContext, into answer: StreamedAnswer) throws -> EngineResult {
        _ = answer.token("Hello\n")
        _ = answer.token("world")
        if let failure { throw failure }
        return EngineResult(mode: .chat, model: "stub")
    }
}

/// The pool's SSE route and the relay's translator hold one turn-event vocabulary between them:
/// what the route writes for each ending of a turn, the translator turns into the WebSocket frames
/// Privia's frontend reads.
@Suite struct TurnStreamVocabularyTests {
    /// Runs a turn through the SSE route, then feeds its bytes to the relay's translator as the
    /// pool's FastCGI answer would arrive, in small pieces.
    func frames(_ engine: ChatEngine) throws -> [JSON] {
        let app = try TestApp(engine: engine)
        let (token, _) = try app.user()
        let response = app.call("POST", "/api/stream", json: ["question": "Hi"], token: token)
        let stream = RecordingStream()
        response.run(into: stream)
        var translator = TurnReplyTranslator()
        var frames = translator.receive(.head(CGIResponseHead(status: response.status, headers: response.headers)))
        var rest = stream.bytes[...]
        while !rest.isEmpty {
            frames += translator.receive(.body(ByteBuffer(bytes: rest.prefix(7))))
            rest = rest.dropFirst(7)
        }
        frames += translator.receive(.end)
        #expect(translator.isFinished)
        return frames
    }

    @Test func aCompleteTurnEndsWithDone() throws {
        let frames = try frames(TwoTokenEngine())
        #expect(frames.dropLast().map { $0["type"] } == ["token", "token"])
        #expect(frames.dropLast().map { $0["content"] } == ["Hello\n", "world"])
        let done = try #require(frames.last)
        #expect(done["type"] == "done" && done["status"] == "complete" && done["model"] == "stub")
        #expect(done["conversation_id"]?.stringValue?.isEmpty == false && done["message_id"]?.stringValue?.isEmpty == false)
    }

    @Test func aFailedTurnEndsWithItsErrorAndCode() throws {
        let frames = try frames(TwoTokenEngine(failing: EngineError(.rateLimit, "the provider is busy")))
        #expect(frames.dropLast().map { $0["content"] } == ["Hello\n", "world"])
        let error = try #require(frames.last)
        #expect(error["type"] == "error" && error["code"] == "RATE_LIMIT" && error["content"] == "the provider is busy")
    }

    @Test func everyEventHasOneSSEName() {
        #expect(TurnStreamEvent.token.sseName == nil)
        #expect(TurnStreamEvent.allCases.compactMap(\.sseName) == ["sources", "done", "error"])
        var parser = SSEParser()
        let parsed = TurnStreamEvent.allCases.flatMap { try! parser.feed($0.sse("x")) }.map(\.type)
        #expect(parsed == TurnStreamEvent.allCases.map(\.rawValue))
    }
}
