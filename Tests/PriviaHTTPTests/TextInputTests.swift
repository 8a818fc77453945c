import PriviaSupport
import Testing
import PriviaCore
@testable import PriviaHTTP

/// Text that cannot be stored whole is refused with 400 VALIDATION by the one JSON body reader,
/// for every route: a NUL character in any string, a body that is not UTF-8, a lone surrogate.
@Suite struct TextInputTests {
    static let nul = "before\u{0}after"

    func expectRefused(_ response: HTTPResponse, naming field: String? = nil,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.status == 400, sourceLocation: sourceLocation)
        #expect(response.json["code"] == "VALIDATION", sourceLocation: sourceLocation)
        if let field {
            #expect(response.json["detail"]?.stringValue?.contains(field) == true, "\(response.json)", sourceLocation: sourceLocation)
        }
    }

    @Test func aNulInAnyTurnFieldIsRefusedAndNothingIsStored() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        let chat = try #require(app.call("POST", "/api/conversations", json: [:], token: token).json["id"]?.stringValue)
        for path in ["/api/query", "/api/stream"] {
            for (field, body) in [
                ("question", ["question": .string(Self.nul), "conversation_id": .string(chat)]),
                ("model", ["question": "fine", "conversation_id": .string(chat), "model": .string("stub\u{0}")]),
                ("idempotency_key", ["question": "fine", "conversation_id": .string(chat), "idempotency_key": .string(Self.nul)]),
            ] as [(String, JSON)] {
                expectRefused(app.call("POST", path, json: body, token: token), naming: field)
            }
        }
        #expect(app.call("GET", "/api/conversations/\(chat)", token: token).json["messages"] == [])
    }

    @Test func aNulInAnAccountOrATitleIsRefused() throws {
        let app = try TestApp()
        let good: [(String, JSON)] = [("email", "ann@example.com"), ("password", "correct horse"), ("full_name", "Ann")]
        for field in ["email", "password", "full_name"] {
            let body = JSON.object(good.map { $0.0 == field ? ($0.0, .string("ann\u{0}x@example.com")) : $0 })
            expectRefused(app.call("POST", "/api/auth/signup", json: body), naming: field)
        }
        #expect(app.call("POST", "/api/auth/signup", json: .object(good)).status == 201, "nothing half-made was left")

        let (token, _) = try app.user()
        expectRefused(app.call("POST", "/api/conversations", json: ["title": .string(Self.nul)], token: token), naming: "title")
        let chat = try #require(app.call("POST", "/api/conversations", json: ["title": "Kept"], token: token).json["id"]?.stringValue)
        expectRefused(app.call("PATCH", "/api/conversations/\(chat)", json: ["title": .string(Self.nul)], token: token), naming: "title")
        // Nested and in a member's name: the rule is for every string of the body.
        expectRefused(app.call("PATCH", "/api/conversations/\(chat)", json: ["title": "ok", "extra": [["deep": .string(Self.nul)]]], token: token))
        expectRefused(app.call("PATCH", "/api/conversations/\(chat)", json: ["title": "ok", "ex\u{0}tra": 1], token: token))
        #expect(app.call("GET", "/api/conversations/\(chat)", token: token).json["title"] == "Kept")
    }

    @Test func aBodyThatIsNotUTF8OrHoldsALoneSurrogateIsRefused() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        let chat = try #require(app.call("POST", "/api/conversations", json: [:], token: token).json["id"]?.stringValue)
        let bodies: [[UInt8]] = [
            Array(#"{"question": "caf"#.utf8) + [0xE9] + Array(#"", "conversation_id": "\#(chat)"}"#.utf8),
            Array(#"{"question": "x"#.utf8) + [0xED, 0xA0, 0x80] + Array(#"", "conversation_id": "\#(chat)"}"#.utf8),
            Array(#"{"question": "high \ud800 alone", "conversation_id": "\#(chat)"}"#.utf8),
            Array(#"{"question": "low \udc00 alone", "conversation_id": "\#(chat)"}"#.utf8),
        ]
        let json = ["content-type": "application/json"]
        for body in bodies {
            for path in ["/api/query", "/api/stream"] {
                expectRefused(app.call("POST", path, token: token, headers: json, body: body))
            }
        }
        expectRefused(app.call("POST", "/api/auth/signup", headers: json,
                               body: Array(#"{"email": "b@example.com", "password": "correct horse", "full_name": "\udfff"}"#.utf8)))
        #expect(app.call("GET", "/api/conversations/\(chat)", token: token).json["messages"] == [])
        // Still 422 for JSON that is not JSON at all, as before; and a pair of escapes is one character, kept.
        #expect(app.call("POST", "/api/query", token: token, headers: json, body: Array("{not json".utf8)).status == 422)
        let pair = app.call("POST", "/api/query", token: token, headers: json,
                            body: Array(#"{"question": "pair \ud83d\ude00", "conversation_id": "\#(chat)"}"#.utf8))
        #expect(pair.status == 200)
        let messages = app.call("GET", "/api/conversations/\(chat)", token: token).json["messages"]?.arrayValue
        #expect(messages?.first?["content"] == "pair \u{1F600}")
    }
}
