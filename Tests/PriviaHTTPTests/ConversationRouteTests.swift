import Foundation
import PriviaSupport
import Testing
import PriviaCore
@testable import PriviaHTTP

@Suite struct ConversationRouteTests {
    @Test func newChatIsIdempotentWhileTheConversationIsEmpty() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        let first = app.call("POST", "/api/conversations", token: token)
        #expect(first.status == 201 && first.json["status"]?.stringValue == "empty")
        let again = app.call("POST", "/api/conversations", json: ["title": "ignored"], token: token)
        #expect(again.json["id"] == first.json["id"])
        #expect(app.call("GET", "/api/conversations", token: token).json.arrayValue?.count == 1)
    }

    @Test func everyForeignIdIsNotFound() throws {
        let app = try TestApp()
        let (owner, _) = try app.user()
        let (stranger, _) = try app.user()
        let id = try #require(app.call("POST", "/api/conversations", token: owner).json["id"]?.stringValue)
        for (method, json) in [("GET", nil), ("PATCH", ["title": "mine now"] as JSON?), ("DELETE", nil)] {
            let response = app.call(method, "/api/conversations/\(id)", json: json, token: stranger)
            #expect(response.status == 404, "\(method)")
            #expect(response.json["detail"]?.stringValue == "Conversation not found")
        }
        let query = app.call("POST", "/api/query", json: ["question": "hi", "conversation_id": .string(id)], token: stranger)
        #expect(query.status == 404)
        #expect(app.call("GET", "/api/conversations/\(id)", token: owner).status == 200)
    }

    @Test func renameTrimsAndValidates() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        let id = try #require(app.call("POST", "/api/conversations", token: token).json["id"]?.stringValue)
        let renamed = app.call("PATCH", "/api/conversations/\(id)", json: ["title": "  Trip plans  "], token: token)
        #expect(renamed.status == 200 && renamed.json["title"]?.stringValue == "Trip plans")
        #expect(app.call("PATCH", "/api/conversations/\(id)", json: ["title": "   "], token: token).status == 422)
        #expect(app.call("PATCH", "/api/conversations/\(id)", json: ["title": .string(String(repeating: "x", count: 201))], token: token).status == 422)
    }

    @Test func deleteCascadesToMessages() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        let answer = app.call("POST", "/api/query", json: ["question": "hello"], token: token)
        let id = try #require(answer.json["conversation_id"]?.stringValue)
        #expect(try app.database.read { try $0.first("SELECT count(*) FROM messages WHERE conversation_id = ?", [id], { $0.int(0) }) } == 2)
        #expect(app.call("DELETE", "/api/conversations/\(id)", token: token).status == 204)
        #expect(try app.database.read { try $0.first("SELECT count(*) FROM messages WHERE conversation_id = ?", [id], { $0.int(0) }) } == 0)
        #expect(app.call("GET", "/api/conversations/\(id)", token: token).status == 404)
    }

    @Test func theListPagesWithACursorNewestActivityFirst() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        var ids: [String] = []
        for n in 0..<5 {
            ids.append(try #require(app.call("POST", "/api/query", json: ["question": .string("question \(n)")], token: token).json["conversation_id"]?.stringValue))
        }
        let all = app.call("GET", "/api/conversations", token: token).json.arrayValue!.compactMap { $0["id"]?.stringValue }
        #expect(all == ids.reversed())
        var paged: [String] = []
        var cursor: String?
        repeat {
            var query = ["limit": "2"]
            if let cursor { query["cursor"] = cursor }
            let page = app.call("GET", "/api/conversations", token: token, query: query)
            paged += page.json.arrayValue!.compactMap { $0["id"]?.stringValue }
            cursor = page.header("X-Next-Cursor")
        } while cursor != nil
        #expect(paged == all)
        #expect(app.call("GET", "/api/conversations", token: token, query: ["limit": "0"]).status == 422)
    }
}
