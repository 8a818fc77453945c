import PriviaCore

extension PriviaAPI {
    static let maxPageSize = 200

    /// The whole list by default (Privia's frontend reads it all); `?limit=` pages it, and the
    /// `X-Next-Cursor` header carries the `?cursor=` of the next page.
    func listConversations(_ request: HTTPRequest) throws -> HTTPResponse {
        let caller = try caller(request)
        var limit: Int?
        if let raw = request.query["limit"] {
            guard let value = Int(raw), (1...Self.maxPageSize).contains(value) else {
                throw APIError.validation("limit must be a whole number from 1 to \(Self.maxPageSize)")
            }
            limit = value
        }
        let cursor = request.query["cursor"].flatMap { $0.isEmpty ? nil : $0 }
        let page = try conversations.listJSON(userID: caller.user.id, limit: limit, cursor: cursor)
        var response = HTTPResponse.json(200, encoded: page.json)
        if let next = page.nextCursor { response.headers.append(("X-Next-Cursor", next)) }
        return response.by(caller)
    }

    /// Idempotent: the user's empty conversation if there is one (200), else a new one (201).
    func createConversation(_ request: HTTPRequest) throws -> HTTPResponse {
        let caller = try caller(request)
        let body = try request.jsonObject(allowEmpty: true)
        let (summary, created) = try conversations.openEmpty(userID: caller.user.id, title: try body.string("title"))
        return HTTPResponse.json(created ? 201 : 200, ConversationDetail(summary: summary, messages: [])).by(caller)
    }

    func conversation(_ request: HTTPRequest, id: String) throws -> HTTPResponse {
        let caller = try caller(request)
        return HTTPResponse.json(200, try conversations.detail(userID: caller.user.id, id: id)).by(caller)
    }

    func renameConversation(_ request: HTTPRequest, id: String) throws -> HTTPResponse {
        let caller = try caller(request)
        let body = try request.jsonObject()
        _ = try conversations.summary(userID: caller.user.id, id: id)  // 404 before 422 for a foreign id
        let detail = try conversations.rename(userID: caller.user.id, id: id, title: try body.requiredString("title"))
        return HTTPResponse.json(200, detail).by(caller)
    }

    func deleteConversation(_ request: HTTPRequest, id: String) throws -> HTTPResponse {
        let caller = try caller(request)
        try conversations.delete(userID: caller.user.id, id: id)
        return HTTPResponse.noContent().by(caller)
    }
}
