import PriviaCore
import PriviaSupport

/// Where a streamed response writes. The transport implements it; a `false` from
/// `send`, or `clientGone`, means the client left or asked to stop: stop producing.
public protocol ResponseStream: AnyObject {
    /// Queues bytes and sends them at once. Returns false when the client has gone.
    func send(_ bytes: [UInt8]) -> Bool
    /// Waits up to `duration`, without writing, for the client to leave or to ask to stop:
    /// true as soon as it has (the wait ends then), false when the time ran out with the
    /// client still there. A client that asked to stop still receives what is sent after.
    func clientGone(within duration: Duration) -> Bool
}

extension ResponseStream {
    /// True once the client is known to have gone, checked without writing or waiting.
    public var clientGone: Bool { clientGone(within: .zero) }
}

/// A response as a plain value: a complete body, or a producer that streams.
public struct HTTPResponse: Sendable {
    public enum Body: Sendable {
        case bytes([UInt8])
        case stream(@Sendable (ResponseStream) -> Void)
    }

    public var status: Int
    public var headers: [(String, String)]
    public var body: Body
    /// The authenticated user, for the request log only; never sent.
    public var userID: String?

    public init(status: Int, headers: [(String, String)] = [], body: Body = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON response. (This overload lets a literal like `["detail": ...]` read as `JSON`.)
    public static func json(_ status: Int, _ value: JSON) -> HTTPResponse {
        json(status, encoded: value.encoded())
    }

    /// A JSON response written straight from a value that writes itself.
    public static func json(_ status: Int, _ value: some JSONWritable) -> HTTPResponse {
        json(status, encoded: value.encoded())
    }

    /// A JSON response from JSON text already written.
    public static func json(_ status: Int, encoded: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: .bytes(encoded))
    }

    public static func noContent() -> HTTPResponse { HTTPResponse(status: 204) }

    /// The complete body; empty for a streamed one.
    public var bodyBytes: [UInt8] {
        if case .bytes(let bytes) = body { return bytes }
        return []
    }

    public static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 204: return "No Content"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 409: return "Conflict"
        case 413: return "Payload Too Large"
        case 415: return "Unsupported Media Type"
        case 422: return "Unprocessable Entity"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        default: return "Status \(status)"
        }
    }
}
