import NIOCore
import PriviaCore
import Testing
@testable import PriviaRelay

/// The pool's answer to one turn, as FastCGI response events.
func sseHead(_ status: Int = 200) -> FastCGIResponseEvent {
    .head(CGIResponseHead(status: status, headers: [("Content-Type", "text/event-stream")]))
}

func body(_ text: String) -> FastCGIResponseEvent { .body(ByteBuffer(string: text)) }

@Suite struct ClientMessageTests {
    @Test func questionWithConversationAndPassthrough() {
        let message = ClientMessage.parse(#"{"question":"Hi","conversation_id":"c1","model":"m","temperature":0.5,"max_tokens":10,"idempotency_key":"k","action":"regenerate","evil":"x"}"#)
        #expect(message == .question("Hi", body: .object([
            ("question", "Hi"), ("conversation_id", "c1"), ("model", "m"), ("temperature", 0.5),
            ("max_tokens", 10), ("idempotency_key", "k"), ("action", "regenerate"),
        ])))
    }

    @Test func nullConversationIsLeftOut() {
        #expect(ClientMessage.parse(#"{"question":"Hi","conversation_id":null}"#) == .question("Hi", body: ["question": "Hi"]))
    }

    @Test func bareTextAndJSONStringsAreQuestions() {
        #expect(ClientMessage.parse("hello there") == .question("hello there", body: ["question": "hello there"]))
        #expect(ClientMessage.parse(#""quoted""#) == .question("quoted", body: ["question": "quoted"]))
        #expect(ClientMessage.parse("42") == .question("42", body: ["question": "42"]))
    }

    @Test func stopAndBlank() {
        #expect(ClientMessage.parse(#"{"type":"stop"}"#) == .stop)
        #expect(ClientMessage.parse(#"{"question":"  \n"}"#).isBlankQuestion)
        #expect(ClientMessage.parse(#"{}"#).isBlankQuestion)
        #expect(ClientMessage.parse(" ").isBlankQuestion)
        #expect(!ClientMessage.parse(#"{"action":"regenerate","conversation_id":"c"}"#).isBlankQuestion, "a regenerate needs no question")
        #expect(ClientMessage.parse(#"{"action":"edit","conversation_id":"c"}"#).isBlankQuestion)
        #expect(!ClientMessage.parse("x").isBlankQuestion)
    }
}

@Suite struct ChatSocketSessionTests {
    @Test func blankQuestionIsAnErrorAndTheSessionStaysIdle() {
        var session = ChatSocketSession()
        #expect(session.receive(text: #"{"question":"   "}"#) == [.send(["type": "error", "content": "Question is required"])])
        #expect(session.runningTurn == nil)
    }

    @Test func aFullTurn() {
        var session = ChatSocketSession()
        #expect(session.receive(text: #"{"question":"Hi"}"#) == [.startTurn(1, body: ["question": "Hi"])])
        #expect(session.receive(sseHead(), forTurn: 1).isEmpty)
        let frames = session.receive(body(": ping\n\ndata: Hel\n\ndata: lo\ndata: world\n\nevent: sources\ndata: [\"doc\"]\n\nevent: done\ndata: {\"conversation_id\": \"c1\", \"message_id\": \"m1\", \"mode\": \"stub\", \"sources\": [\"doc\"]}\n\n"), forTurn: 1)
        #expect(frames == [
            .send(["type": "token", "content": "Hel", "mode": "stream"]),
            .send(["type": "token", "content": "lo\nworld", "mode": "stream"]),
            .send(["type": "sources", "sources": ["doc"]]),
            .send(["type": "done", "conversation_id": "c1", "message_id": "m1", "mode": "stub", "sources": ["doc"]]),
        ])
        #expect(session.runningTurn == nil, "done ends the turn for the client")
        #expect(session.receive(.end, forTurn: 1).isEmpty)
        #expect(session.receive(text: "next") == [.startTurn(2, body: ["question": "next"])])
    }

    /// A browser's JSON.stringify writes a lone surrogate as an escape: such a frame is refused,
    /// not taken as a bare-text question made of its JSON.
    @Test func aFrameWhoseTextIsNotUnicodeIsAValidationError() {
        var session = ChatSocketSession()
        for text in [#"{"question":"lone \ud800","conversation_id":"c1"}"#, #""\udc00""#] {
            let actions = session.receive(text: text)
            guard actions.count == 1, case .send(let frame) = actions[0] else {
                Issue.record("\(actions)")
                continue
            }
            #expect(frame["type"] == "error" && frame["code"] == "VALIDATION", "\(frame)")
        }
        #expect(session.runningTurn == nil)
        #expect(session.receive(text: "{not json") == [.startTurn(1, body: ["question": "{not json"])], "other text is still a question")
    }

    @Test func secondQuestionWhileRunningIsRefused() {
        var session = ChatSocketSession()
        _ = session.receive(text: "one")
        #expect(session.receive(text: "two") == [.send(["type": "error", "content": "A response is already being generated"])])
        #expect(session.runningTurn == 1)
    }

    @Test func stopAsksThePoolAndTheTurnEndsWithItsStoppedDone() {
        var session = ChatSocketSession()
        #expect(session.receive(text: #"{"type":"stop"}"#).isEmpty, "stop while idle does nothing")
        _ = session.receive(text: "one")
        _ = session.receive(sseHead(), forTurn: 1)
        #expect(session.receive(text: #"{"type":"stop"}"#) == [.stopTurn(1)])
        #expect(session.isStopping && session.runningTurn == 1)
        #expect(session.receive(text: #"{"type":"stop"}"#).isEmpty, "the pool is asked once")
        #expect(session.receive(text: "meanwhile") == [.send(ChatSocketSession.busy)], "a question waits for the stop's done")
        #expect(session.receive(body("data: in flight\n\nevent: done\ndata: {\"message_id\": \"m1\", \"status\": \"stopped\", \"stopped\": true}\n\n"), forTurn: 1) == [
            .send(["type": "token", "content": "in flight", "mode": "stream"]),
            .send(["type": "done", "message_id": "m1", "status": "stopped", "stopped": true]),
        ])
        #expect(session.runningTurn == nil && !session.isStopping)
        #expect(session.stopTimedOut(1).isEmpty, "the bound of a turn that ended does nothing")
        #expect(session.receive(text: "again") == [.startTurn(2, body: ["question": "again"])])
    }

    @Test func aStopThePoolNeverAnswersEndsWithTheRelaysOwnDone() {
        var session = ChatSocketSession()
        _ = session.receive(text: "one")
        #expect(session.stopTimedOut(1).isEmpty, "no stop, no bound")
        _ = session.receive(text: #"{"type":"stop"}"#)
        #expect(session.stopTimedOut(1) == [.send(["type": "done", "status": "stopped", "stopped": true]), .cancelTurn(1)])
        #expect(session.receive(body("data: late\n\n"), forTurn: 1).isEmpty)
        #expect(session.receive(text: "again") == [.startTurn(2, body: ["question": "again"])])
    }

    @Test func aStoppedTurnThatFailsEndsWithItsError() {
        var session = ChatSocketSession()
        _ = session.receive(text: "one")
        _ = session.receive(text: #"{"type":"stop"}"#)
        #expect(session.receive(.failed(FastCGIClientError.closedBeforeResponse), forTurn: 1) == [
            .send(["type": "error", "content": "The chat service is unavailable", "code": "UNKNOWN"]),
        ])
        #expect(session.runningTurn == nil && !session.isStopping)
    }

    @Test func closingTheSocketCancelsTheTurn() {
        var session = ChatSocketSession()
        #expect(session.socketClosed().isEmpty)
        _ = session.receive(text: "one")
        #expect(session.socketClosed() == [.cancelTurn(1)])
        _ = session.receive(text: "two")
        _ = session.receive(text: #"{"type":"stop"}"#)
        #expect(session.socketClosed() == [.cancelTurn(2)], "a stop in progress too")
        #expect(session.stopTimedOut(2).isEmpty)
    }

    @Test func errorEventBecomesAnErrorFrame() {
        var session = ChatSocketSession()
        _ = session.receive(text: "q")
        _ = session.receive(sseHead(), forTurn: 1)
        #expect(session.receive(body("data: par\n\nevent: error\ndata: {\"error\": \"Provider down\", \"code\": \"PROVIDER\"}\n\n"), forTurn: 1) == [
            .send(["type": "token", "content": "par", "mode": "stream"]),
            .send(["type": "error", "content": "Provider down", "code": "PROVIDER"]),
        ])
        #expect(session.runningTurn == nil)
    }

    @Test func non200BecomesAnErrorFrameWithTheDetail() {
        var session = ChatSocketSession()
        _ = session.receive(text: #"{"question":"q","conversation_id":"nope"}"#)
        _ = session.receive(.head(CGIResponseHead(status: 404, headers: [])), forTurn: 1)
        #expect(session.receive(body(#"{"detail": "Conversation"#), forTurn: 1).isEmpty)
        #expect(session.receive(body(#" not found", "code": "NOT_FOUND"}"#), forTurn: 1).isEmpty)
        #expect(session.receive(.end, forTurn: 1) == [.send(["type": "error", "content": "Conversation not found", "code": "NOT_FOUND"])])
        #expect(session.runningTurn == nil)
    }

    @Test func streamCutShortIsAnError() {
        var session = ChatSocketSession()
        _ = session.receive(text: "q")
        _ = session.receive(sseHead(), forTurn: 1)
        _ = session.receive(body("data: a\n\n"), forTurn: 1)
        #expect(session.receive(.end, forTurn: 1) == [.send(["type": "error", "content": "The response ended unexpectedly", "code": "UNKNOWN"])])
    }

    @Test func unreachablePoolIsAnError() {
        var session = ChatSocketSession()
        _ = session.receive(text: "q")
        #expect(session.receive(.failed(FastCGIClientError.closedBeforeResponse), forTurn: 1) == [
            .send(["type": "error", "content": "The chat service is unavailable", "code": "UNKNOWN"]),
        ])
        #expect(session.runningTurn == nil)
    }
}
