import NIOCore
import PriviaCore
import PriviaSupport

/// The two FastCGI requests the relay makes to the pool, with the params nginx would send.
public enum PoolRequests {
    /// `GET /api/auth/me`: the pool checks the token and names its user.
    public static func authMe(token: String, remoteAddress: String, requestID: String = newRequestID()) -> FastCGIRequest {
        FastCGIRequest(params: params(method: "GET", path: "/api/auth/me", token: token,
                                      remoteAddress: remoteAddress, requestID: requestID))
    }

    /// `POST /api/stream` with the turn's JSON body; the answer is an SSE stream.
    public static func stream(body: JSON, token: String, remoteAddress: String, requestID: String) -> FastCGIRequest {
        let bytes = body.encoded()
        var params = params(method: "POST", path: "/api/stream", token: token,
                            remoteAddress: remoteAddress, requestID: requestID)
        params += [
            ("CONTENT_TYPE", "application/json"),
            ("CONTENT_LENGTH", String(bytes.count)),
            ("HTTP_ACCEPT", "text/event-stream"),
        ]
        return FastCGIRequest(params: params, body: bytes)
    }

    private static func params(method: String, path: String, token: String, remoteAddress: String,
                               requestID: String) -> [(String, String)] {
        [
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("SERVER_SOFTWARE", "privia-relay"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_METHOD", method),
            ("REQUEST_URI", path),
            ("DOCUMENT_URI", path),
            ("SCRIPT_NAME", path),
            ("QUERY_STRING", ""),
            ("REMOTE_ADDR", remoteAddress),
            ("REQUEST_ID", requestID),
            ("HTTP_AUTHORIZATION", "Bearer " + token),
        ]
    }

    /// 32 random hex digits, the shape of nginx's `$request_id`.
    public static func newRequestID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }
}

/// Who is on the other end of a socket, as the pool decided.
public enum SocketIdentity: Sendable, Equatable {
    case user(id: String, token: String)
    /// No token, or the pool refused it: the socket closes with 1008.
    case rejected(reason: String)
    /// The pool could not be asked: the socket closes with 1011 (the client may retry).
    case unavailable
}

/// Asks the pool who a token belongs to; the relay never verifies tokens itself.
public struct PoolAuthenticator: Sendable {
    public let transport: any PoolTransport

    public init(transport: any PoolTransport) { self.transport = transport }

    public func identify(token: String?, remoteAddress: String, on eventLoop: any EventLoop) -> EventLoopFuture<SocketIdentity> {
        guard let token else { return eventLoop.makeSucceededFuture(.rejected(reason: "Not authenticated")) }
        return transport.fetch(PoolRequests.authMe(token: token, remoteAddress: remoteAddress), on: eventLoop)
            .map { response -> SocketIdentity in
                let body = try? JSONParser.parse(response.body)
                switch response.head.status {
                case 200:
                    guard let id = body?["id"]?.stringValue, !id.isEmpty else { return .unavailable }
                    return .user(id: id, token: token)
                case 401, 403:
                    return .rejected(reason: body?["detail"]?.stringValue ?? "Invalid or expired token")
                default:
                    return .unavailable
                }
            }
            .recover { _ in .unavailable }
    }
}
