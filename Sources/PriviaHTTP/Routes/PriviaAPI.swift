import Foundation
import Logging
import PriviaChat
import PriviaCore
import PriviaEngines
import PriviaSupport

/// Privia's HTTP API: every route, as a function from request to response.
public final class PriviaAPI: HTTPResponder {
    let database: Database
    let accounts: AccountService
    let conversations: ConversationStore
    let chat: ChatService
    let settings: Settings
    let crossSite: CrossSiteCheck
    var catalog: ModelCatalog { chat.catalog }
    var usage: UsageLedger { chat.usage }
    let startedAt = Date()

    /// What the routes need from the configuration.
    public struct Settings: Sendable {
        public var environment: String
        public var oauthExchangeSecret: String?
        public var heartbeatSeconds: Double
        /// The origins whose pages may send cookie-authenticated requests that change things.
        public var allowedOrigins: Set<String>
        public init(environment: String, oauthExchangeSecret: String?, heartbeatSeconds: Double, allowedOrigins: Set<String> = []) {
            self.environment = environment
            self.oauthExchangeSecret = oauthExchangeSecret
            self.heartbeatSeconds = heartbeatSeconds
            self.allowedOrigins = allowedOrigins
        }
    }

    public init(database: Database, accounts: AccountService, chat: ChatService, settings: Settings) {
        self.database = database
        self.accounts = accounts
        self.conversations = ConversationStore(database: database)
        self.chat = chat
        self.settings = settings
        self.crossSite = CrossSiteCheck(allowedOrigins: settings.allowedOrigins)
    }

    public func respond(to request: HTTPRequest) -> HTTPResponse {
        do {
            return try route(request)
        } catch {
            let apiError = APIError.from(error)
            if apiError.status == 500 {
                processLog.error("unhandled error", metadata: ["request_id": .string(request.requestID), "error": .string("\(error)")])
            } else if apiError.code == .storageFull {
                processLog.error("write refused: storage full", metadata: ["request_id": .string(request.requestID), "error": .string("\(error)")])
            }
            return apiError.response
        }
    }

    private func route(_ request: HTTPRequest) throws -> HTTPResponse {
        let path = PathMatch(request.path)
        let method = request.method
        func allow(_ methods: String...) throws {
            guard methods.contains(method) else {
                var error = APIError(405, .validation, "Method Not Allowed")
                error.headers = [("Allow", methods.joined(separator: ", "))]
                throw error
            }
        }
        if path.match("/api/health") != nil {
            try allow("GET", "HEAD")
            return health()
        }
        if path.match("/api/auth/signup") != nil { try allow("POST"); return try signUp(request) }
        if path.match("/api/auth/login") != nil { try allow("POST"); return try signIn(request) }
        if path.match("/api/auth/me") != nil { try allow("GET"); return try me(request) }
        if path.match("/api/auth/logout") != nil { try allow("POST"); return try signOut(request) }
        if path.match("/api/auth/logout-all") != nil { try allow("POST"); return try signOutEverywhere(request) }
        if path.match("/api/auth/refresh") != nil { try allow("POST"); return try refreshSession(request) }
        if path.match("/api/auth/oauth") != nil { try allow("POST"); return try exchangeOAuth(request) }
        if path.match("/api/conversations") != nil {
            try allow("GET", "POST")
            return method == "GET" ? try listConversations(request) : try createConversation(request)
        }
        if let captures = path.match("/api/conversations/{id}") {
            try allow("GET", "PATCH", "DELETE")
            switch method {
            case "GET": return try conversation(request, id: captures[0])
            case "PATCH": return try renameConversation(request, id: captures[0])
            default: return try deleteConversation(request, id: captures[0])
            }
        }
        if path.match("/api/models") != nil { try allow("GET"); return try models(request) }
        if path.match("/api/usage") != nil { try allow("GET"); return try usageReport(request) }
        if path.match("/api/query") != nil { try allow("POST"); return try query(request) }
        if path.match("/api/stream") != nil { try allow("POST"); return try stream(request) }
        throw APIError.notFound("Not Found")
    }

    // MARK: Authentication

    /// The caller, from `Authorization: Bearer …` or else the `auth-token` cookie; a cookie on a
    /// request that changes something must pass the cross-site check.
    func caller(_ request: HTTPRequest) throws -> AuthenticatedUser {
        guard let (token, source) = Self.presentedToken(request) else { throw APIError.unauthorized("Not authenticated") }
        if source == .cookie && CrossSiteCheck.isStateChanging(request.method) { try crossSite.check(request) }
        guard let caller = try accounts.authenticate(token: token) else {
            throw APIError.unauthorized("Invalid or expired token")
        }
        return caller
    }

    static func token(_ request: HTTPRequest) -> String? {
        presentedToken(request)?.token
    }

    static func presentedToken(_ request: HTTPRequest) -> (token: String, source: PresentedToken.Source)? {
        PresentedToken.locate(authorization: request.headers["authorization"], cookieHeaders: request.headers["cookie"].map { [$0] } ?? [])
    }

    // MARK: Health

    /// `degraded` (503) when a write could not be made now: the database's write lock cannot be
    /// had, or its disk is (nearly) full (`StorageSpace`).
    func health() -> HTTPResponse {
        let lockable = (try? database.withConnection { $0.canWrite(timeoutMilliseconds: 1000) }) ?? false
        let writable = lockable && !database.storage.isLow
        let uptime = (Date().timeIntervalSince(startedAt) * 1000).rounded() / 1000
        return .json(writable ? 200 : 503, [
            "status": .string(writable ? "ok" : "degraded"), "version": .string(PriviaVersion.current),
            "env": .string(settings.environment), "uptime": .double(uptime), "timestamp": .string(Timestamp.now()),
        ])
    }
}

extension HTTPResponse {
    /// The same response, attributed to `user` in the request log.
    func by(_ caller: AuthenticatedUser) -> HTTPResponse {
        var copy = self
        copy.userID = caller.user.id
        return copy
    }
}
