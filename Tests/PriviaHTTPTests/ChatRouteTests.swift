import Foundation
import PriviaSupport
import Testing
import PriviaCore
import PriviaEngines
@testable import PriviaHTTP

@Suite struct ChatRouteTests {
    @Test func aRestTurnTitlesActivatesAndPersistsBothMessages() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        let question = "What does a privacy-first workspace keep about me, exactly?"
        let answer = app.call("POST", "/api/query", json: ["question": .string(question)], token: token)
        #expect(answer.status == 200)
        #expect(answer.json["answer"]?.stringValue == StubEngine.reply)
        #expect(answer.json["mode"]?.stringValue == "stub")
        #expect(answer.json["sources"] == [])
        let id = try #require(answer.json["conversation_id"]?.stringValue)
        let detail = app.call("GET", "/api/conversations/\(id)", token: token).json
        #expect(detail["status"]?.stringValue == "active")
        #expect(detail["title"]?.stringValue == String(question.prefix(40)) + "...")
        let messages = try #require(detail["messages"]?.arrayValue)
        #expect(messages.map { $0["role"]?.stringValue } == ["user", "assistant"])
        #expect(messages[1]["status"]?.stringValue == "complete")
        #expect(messages[0]["timestamp"]?.stringValue?.hasSuffix("Z") == true)
    }

    @Test func aBlankQuestionIsRefused() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        let response = app.call("POST", "/api/stream", json: ["question": "   "], token: token)
        #expect(response.status == 422 && response.json["detail"]?.stringValue == "Question is required")
    }

    @Test func theSSEStreamParsesAsTheFrontendParsesIt() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        let response = app.call("POST", "/api/stream", json: ["question": "hello"], token: token)
        #expect(response.status == 200)
        #expect(response.header("content-type")?.hasPrefix("text/event-stream") == true)
        #expect(response.header("x-accel-buffering") == "no")
        let stream = RecordingStream()
        response.run(into: stream)
        let events = stream.events
        let tokens = events.filter { $0.event == "" }.map(\.data).joined()
        #expect(tokens == StubEngine.reply)
        let done = try #require(events.last)
        #expect(done.event == "done")
        let payload = try JSONParser.parse(done.data)
        #expect(payload["mode"]?.stringValue == "stub")
        #expect(payload["message_id"]?.stringValue?.count == 36)
        #expect(events.filter { $0.event != "" && $0.event != "done" }.isEmpty, "no other named events")
    }

    @Test func aClientLeavingStopsTheGenerationAndKeepsThePartialAnswer() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        let response = app.call("POST", "/api/stream", json: ["question": "hello"], token: token)
        let stream = RecordingStream()
        stream.leaveAfterSends = 3
        response.run(into: stream)
        let conversations = app.call("GET", "/api/conversations", token: token).json.arrayValue!
        let id = try #require(conversations.first?["id"]?.stringValue)
        let messages = app.call("GET", "/api/conversations/\(id)", token: token).json["messages"]!.arrayValue!
        let answer = try #require(messages.last)
        #expect(answer["status"]?.stringValue == "stopped")
        let content = try #require(answer["content"]?.stringValue)
        #expect(!content.isEmpty && StubEngine.reply.hasPrefix(content) && content.count < StubEngine.reply.count)
    }

    @Test func aClientLeavingWhileTheEngineWaitsStopsTheGeneration() throws {
        let app = try TestApp(engine: StubEngine(tokenDelayMilliseconds: 20))
        let (token, _) = try app.user()
        let stream = RecordingStream()
        stream.leaveAfterSends = 4  // the head is not a send here: four tokens, then gone mid-pause
        app.call("POST", "/api/stream", json: ["question": "hello"], token: token).run(into: stream)
        #expect(stream.events.filter { $0.event == "" }.count == 4)
        let id = try #require(app.call("GET", "/api/conversations", token: token).json.arrayValue?.first?["id"]?.stringValue)
        let answer = try #require(app.call("GET", "/api/conversations/\(id)", token: token).json["messages"]?.arrayValue?.last)
        #expect(answer["status"]?.stringValue == "stopped")
        #expect(answer["content"]?.stringValue == StubEngine.reply.split(separator: " ").prefix(4).joined(separator: " "))
    }

    @Test func tokensHoldingNewlinesAreSentAsSeveralDataLines() {
        #expect(String(decoding: SSE.event(data: "a\nb"), as: UTF8.self) == "data: a\ndata: b\n\n")
        #expect(String(decoding: SSE.event("done", data: "{}"), as: UTF8.self) == "event: done\ndata: {}\n\n")
    }

    /// The engine is silent for 120 ms before each token, longer than the heartbeat (50 ms in
    /// TestApp): a comment goes out meanwhile. The client leaves at the first one, so the test
    /// does not wait for the whole answer.
    @Test func silenceSendsHeartbeats() throws {
        let app = try TestApp(engine: StubEngine(tokenDelayMilliseconds: 120))
        let (token, _) = try app.user()
        let stream = RecordingStream()
        stream.leaveWhen = { $0.contains(": ping\n\n") }
        app.call("POST", "/api/stream", json: ["question": "hello"], token: token).run(into: stream)
        #expect(stream.text.contains(": ping\n\n"))
        #expect(stream.events.count < StubEngine.reply.split(separator: " ").count, "the ping came only after the answer")
    }
}
