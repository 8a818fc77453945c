import PriviaSupport
import Testing
import PriviaChat
@testable import PriviaCore
import PriviaEngines

/// The count the list shows is kept on the conversation row (by the chat service and by
/// triggers, migration 0005): it must follow
/// every way messages come and go.
@Suite struct MessageCountTests {
    final class Discard: GenerationSink {
        func token(_ text: String) -> Bool { true }
        func keepGoing() -> Bool { true }
    }

    /// The conversations as the list shows them.
    func listed(_ store: ConversationStore, _ userID: String) throws -> [JSON] {
        try #require(try JSONParser.parse(String(decoding: store.listJSON(userID: userID).json, as: UTF8.self)).arrayValue)
    }

    func count(_ store: ConversationStore, _ userID: String, _ id: String) throws -> Int {
        let shown = try #require(try listed(store, userID).first { $0["id"]?.stringValue == id }?["message_count"]?.intValue)
        #expect(shown == (try store.detail(userID: userID, id: id)).messages.count)
        return shown
    }

    @Test func theListedCountFollowsTurnsRedosAndDeletes() throws {
        let database = try makeTestDatabase()
        let userID = "u-count"
        try database.write { db in
            try db.run("INSERT INTO users (id, email, password_hash, role, created_at) VALUES (?, 'count@example.com', '', 'member', ?)",
                       [userID, StoredTime.now()])
        }
        let chat = ChatService(database: database, engine: StubEngine())
        let store = ConversationStore(database: database)
        func turn(_ request: TurnRequest) throws -> String {
            try chat.generate(try chat.prepare(userID: userID, request), sink: Discard()).answer.conversationID
        }

        let id = try turn(TurnRequest(question: "first"))
        #expect(try count(store, userID, id) == 2)
        _ = try turn(TurnRequest(question: "second", conversationID: id))
        #expect(try count(store, userID, id) == 4)
        _ = try turn(TurnRequest(question: "", conversationID: id, action: .regenerate))
        #expect(try count(store, userID, id) == 4)
        _ = try turn(TurnRequest(question: "second, edited", conversationID: id, action: .edit))
        #expect(try count(store, userID, id) == 4)
        try database.write { db in try db.run("DELETE FROM messages WHERE conversation_id = ? AND role = 'assistant'", [id]) }
        #expect(try count(store, userID, id) == 2)

        let other = try turn(TurnRequest(question: "elsewhere"))
        try store.delete(userID: userID, id: id)
        #expect(try listed(store, userID).map { $0["id"]?.stringValue } == [other])
        #expect(try count(store, userID, other) == 2)
    }
}
