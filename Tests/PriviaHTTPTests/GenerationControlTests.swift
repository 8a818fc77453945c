import Foundation
import PriviaSupport
import Testing
import PriviaCore
import PriviaEngines
@testable import PriviaHTTP

/// An engine that answers with a numbered reply, so a regenerated answer differs from the first.
final class CountingEngine: ChatEngine, @unchecked Sendable {
    private let lock = NSLock()
    private var calls = 0
    var callCount: Int { lock.withLock { calls } }

    func generate(_ context: EngineContext, into answer: StreamedAnswer) throws -> EngineResult {
        let n = lock.withLock { calls += 1; return calls }
        let text = "answer \(n) to: \(context.history.last?.content ?? "")"
        _ = answer.token(text)
        return EngineResult(mode: .chat, model: "stub", usage: TokenUsage(inputTokens: 100, outputTokens: 50, estimated: false))
    }
}

@Suite struct GenerationControlTests {
    func messages(_ app: TestApp, _ token: String, _ id: String) -> [JSON] {
        app.call("GET", "/api/conversations/\(id)", token: token).json["messages"]?.arrayValue ?? []
    }

    @Test func aRepeatedIdempotencyKeyYieldsOneTurnAndTheFirstResult() throws {
        let engine = CountingEngine()
        let app = try TestApp(engine: engine)
        let (token, _) = try app.user()
        let first = app.call("POST", "/api/query", json: ["question": "once"], token: token, headers: ["idempotency-key": "k-1"])
        let second = app.call("POST", "/api/query", json: ["question": "once"], token: token, headers: ["idempotency-key": "k-1"])
        #expect(first.status == 200 && second.status == 200)
        #expect(second.json["answer"] == first.json["answer"])
        #expect(second.json["message_id"] == first.json["message_id"])
        #expect(engine.callCount == 1)
        let id = try #require(first.json["conversation_id"]?.stringValue)
        #expect(messages(app, token, id).count == 2)
        // The key can come in the body too, and over SSE the replay streams the stored answer.
        let stream = RecordingStream()
        app.call("POST", "/api/stream", json: ["question": "once", "idempotency_key": "k-1"], token: token).run(into: stream)
        #expect(stream.events.filter { $0.event == "" }.map(\.data).joined() == first.json["answer"]?.stringValue)
        #expect(engine.callCount == 1)
        // Keys belong to their user.
        let (other, _) = try app.user()
        #expect(app.call("POST", "/api/query", json: ["question": "once"], token: other, headers: ["idempotency-key": "k-1"]).json["answer"] != first.json["answer"])
    }

    @Test func regenerateReplacesOnlyTheLastAnswer() throws {
        let app = try TestApp(engine: CountingEngine())
        let (token, _) = try app.user()
        let id = try #require(app.call("POST", "/api/query", json: ["question": "first"], token: token).json["conversation_id"]?.stringValue)
        _ = app.call("POST", "/api/query", json: ["question": "second", "conversation_id": .string(id)], token: token)
        let before = messages(app, token, id)
        let again = app.call("POST", "/api/query", json: ["action": "regenerate", "conversation_id": .string(id)], token: token)
        #expect(again.status == 200 && again.json["answer"]?.stringValue == "answer 3 to: second")
        let after = messages(app, token, id)
        #expect(after.count == 4)
        #expect(Array(after.prefix(3)).map { $0["id"] } == Array(before.prefix(3)).map { $0["id"] })
        #expect(after[3]["content"]?.stringValue == "answer 3 to: second")
    }

    @Test func editReplacesTheLastQuestionAndItsAnswer() throws {
        let app = try TestApp(engine: CountingEngine())
        let (token, _) = try app.user()
        let id = try #require(app.call("POST", "/api/query", json: ["question": "first"], token: token).json["conversation_id"]?.stringValue)
        _ = app.call("POST", "/api/query", json: ["question": "secnd", "conversation_id": .string(id)], token: token)
        let edited = app.call("POST", "/api/query", json: ["action": "edit", "question": "second", "conversation_id": .string(id)], token: token)
        #expect(edited.json["answer"]?.stringValue == "answer 3 to: second")
        let contents = messages(app, token, id).compactMap { $0["content"]?.stringValue }
        #expect(contents == ["first", "answer 1 to: first", "second", "answer 3 to: second"])
        #expect(app.call("POST", "/api/query", json: ["action": "edit", "question": "x"], token: token).status == 422)
        #expect(app.call("POST", "/api/query", json: ["action": "rewind", "question": "x"], token: token).status == 422)
    }

    @Test func aTurnOverBudgetIsRefusedBeforeAnythingIsSaved() throws {
        let engine = CountingEngine()
        let app = try TestApp(engine: engine, budget: UsageBudget(dailyTokens: 200, dailyCost: 0))
        let (token, _) = try app.user()
        #expect(app.call("POST", "/api/query", json: ["question": "one"], token: token).status == 200)  // 150 tokens
        #expect(app.call("POST", "/api/query", json: ["question": "two"], token: token).status == 200)  // 300 tokens
        let refused = app.call("POST", "/api/stream", json: ["question": "three"], token: token)
        #expect(refused.status == 429)
        #expect(refused.json["code"]?.stringValue == "RATE_LIMIT")
        #expect(refused.json["detail"]?.stringValue?.contains("resets at 00:00 UTC") == true)
        #expect(engine.callCount == 2)
        let usage = app.call("GET", "/api/usage", token: token).json
        #expect(usage["totals"]?["input_tokens"]?.intValue == 200)
        #expect(usage["totals"]?["output_tokens"]?.intValue == 100)
        #expect(usage["by_day_and_model"]?.arrayValue?.first?["generations"]?.intValue == 2)
        #expect(usage["budget"]?["daily_tokens"]?.intValue == 200)
    }

    @Test func anUnknownModelIsAClientErrorAndNothingIsSaved() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        let response = app.call("POST", "/api/query", json: ["question": "hi", "model": "gpt-imaginary"], token: token)
        #expect(response.status == 400 && response.json["code"]?.stringValue == "VALIDATION")
        #expect(app.call("GET", "/api/conversations", token: token).json.arrayValue?.isEmpty == true)
        let models = app.call("GET", "/api/models", token: token).json.arrayValue ?? []
        #expect(models.map { $0["id"]?.stringValue } == ["stub"])
    }
}
