import PriviaCore
import PriviaEngines

/// An error that reaches a client: an HTTP status, a stable code and a human message.
///
/// The body keeps Privia's FastAPI shape (`detail`) that its frontend reads, and adds the
/// stable `code` that clients can match on.
public struct APIError: Error, Sendable {
    public enum Code: String, Sendable {
        case auth = "AUTH", validation = "VALIDATION", notFound = "NOT_FOUND", conflict = "CONFLICT"
        case rateLimit = "RATE_LIMIT", provider = "PROVIDER", storageFull = "STORAGE_FULL", unknown = "UNKNOWN"
        /// A state-changing request authenticated by a cookie failed the cross-site check.
        case csrf = "CSRF"
    }

    public let status: Int
    public let code: Code
    public let message: String
    public var headers: [(String, String)] = []

    public init(_ status: Int, _ code: Code, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public static func validation(_ message: String) -> APIError { APIError(422, .validation, message) }
    public static func badRequest(_ message: String) -> APIError { APIError(400, .validation, message) }
    public static func notFound(_ message: String = "Not found") -> APIError { APIError(404, .notFound, message) }
    public static func unauthorized(_ message: String = "Not authenticated") -> APIError {
        var error = APIError(401, .auth, message)
        error.headers = [("WWW-Authenticate", "Bearer")]
        return error
    }
    /// 507 Insufficient Storage: the server's disk is full. Reads still work; writes work again
    /// once there is room, without a restart.
    public static let storageFull = APIError(507, .storageFull, "The server is out of storage space; try again later")

    public var response: HTTPResponse {
        var response = HTTPResponse.json(status, ["detail": .string(message), "code": .string(code.rawValue)])
        response.headers += headers
        return response
    }

    /// Maps a domain error to what the client sees; anything unexpected is a 500 without internals.
    public static func from(_ error: Error) -> APIError {
        switch error {
        case let api as APIError: return api
        case let domain as DomainError:
            switch domain {
            case .notFound(let what): return .notFound(what)
            case .invalid(let message): return .validation(message)
            case .conflict(let message): return APIError(409, .conflict, message)
            case .unauthorized(let message): return .unauthorized(message)
            case .rateLimited(let message): return APIError(429, .rateLimit, message)
            }
        case let catalog as ModelCatalogError:
            return APIError(400, .validation, catalog.description)
        case let sqlite as SQLiteError where sqlite.isStorageFull:
            return .storageFull
        default:
            return APIError(500, .unknown, "Internal server error")
        }
    }
}
