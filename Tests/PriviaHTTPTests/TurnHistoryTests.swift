import Foundation
import Testing
import PriviaCore
import PriviaEngines
@testable import PriviaHTTP

/// Answers "answer N" and keeps the history each call was given.
final class HistoryRecordingEngine: ChatEngine, @unchecked Sendable {
    private let lock = NSLock()
    private var seen: [[ChatMessage]] = []
    var histories: [[String]] { lock.withLock { seen.map { $0.map { "\($0.role.rawValue): \($0.content)" } } } }

    func generate(_ context: EngineContext, into answer: StreamedAnswer) throws -> EngineResult {
        let n = lock.withLock { seen.append(context.history); return seen.count }
        _ = answer.token("answer \(n)")
        return EngineResult(mode: .chat, model: "stub", usage: nil)
    }
}

@Suite struct TurnHistoryTests {
    /// A first question (in a new conversation or in an empty one opened by "new chat") is the
    /// whole history; a later turn sees everything before it, oldest first; a regenerated answer
    /// sees the conversation without the answer it replaces.
    @Test func theEngineSeesTheConversationSoFar() throws {
        let engine = HistoryRecordingEngine()
        let app = try TestApp(engine: engine)
        let (token, _) = try app.user()
        let id = try #require(app.call("POST", "/api/query", json: ["question": "first"], token: token).json["conversation_id"]?.stringValue)
        _ = app.call("POST", "/api/query", json: ["question": "second", "conversation_id": .string(id)], token: token)
        let empty = try #require(app.call("POST", "/api/conversations", token: token).json["id"]?.stringValue)
        _ = app.call("POST", "/api/query", json: ["question": "third", "conversation_id": .string(empty)], token: token)
        _ = app.call("POST", "/api/query", json: ["action": "regenerate", "conversation_id": .string(id)], token: token)
        #expect(engine.histories == [
            ["user: first"],
            ["user: first", "assistant: answer 1", "user: second"],
            ["user: third"],
            ["user: first", "assistant: answer 1", "user: second"],
        ])
    }

    /// A long conversation hands the engine only its most recent `history_messages`, oldest first.
    @Test func theEngineSeesTheMostRecentMessagesOnly() throws {
        let engine = HistoryRecordingEngine()
        var catalog = ModelCatalog.stubOnly()
        catalog.historyMessages = 3
        let app = try TestApp(engine: engine, catalog: catalog)
        let (token, _) = try app.user()
        let id = try #require(app.call("POST", "/api/query", json: ["question": "first"], token: token).json["conversation_id"]?.stringValue)
        for question in ["second", "third"] {
            _ = app.call("POST", "/api/query", json: ["question": .string(question), "conversation_id": .string(id)], token: token)
        }
        #expect(engine.histories == [
            ["user: first"],
            ["user: first", "assistant: answer 1", "user: second"],
            ["user: second", "assistant: answer 2", "user: third"],
        ])
    }
}
