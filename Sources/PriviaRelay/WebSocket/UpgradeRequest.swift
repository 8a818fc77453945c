import NIOHTTP1
import PriviaCore

/// What the relay reads from the HTTP request that opens a socket.
public struct UpgradeRequest: Sendable {
    public enum Route: Equatable, Sendable {
        case chat
        /// Another path: 404 before any upgrade.
        case notFound
        /// An `Origin` outside the allowlist: 403 before any upgrade.
        case forbiddenOrigin
    }

    public static let chatPath = "/api/ws/chat"

    public let head: HTTPRequestHead

    public init(_ head: HTTPRequestHead) { self.head = head }

    public var path: String {
        String(head.uri.prefix(while: { $0 != "?" }))
    }

    public var query: Substring {
        guard let mark = head.uri.firstIndex(of: "?") else { return "" }
        return head.uri[head.uri.index(after: mark)...]
    }

    /// Browsers send `Origin` on every WebSocket handshake, and CORS does not apply to
    /// WebSockets: a cookie-authenticated socket from another site would otherwise be accepted.
    /// The rule is nginx's (snippets/privia/http.conf): no Origin, an allowed one, or the
    /// request's own origin (its scheme from `X-Forwarded-Proto` and `Host`, port included).
    public func route(allowedOrigins: Set<String>) -> Route {
        guard head.method == .GET, path == Self.chatPath else { return .notFound }
        if !allowedOrigins.isEmpty, let origin = head.headers.first(name: "origin") {
            let normalized = Self.normalizeOrigin(origin)
            if !allowedOrigins.contains(normalized) && normalized != ownOrigin {
                return .forbiddenOrigin
            }
        }
        return .chat
    }

    /// The origin the request was made to, as nginx forwards it; nil without a Host header.
    var ownOrigin: String? {
        guard let host = head.headers.first(name: "host"), !host.isEmpty else { return nil }
        let scheme = head.headers.first(name: "x-forwarded-proto") ?? "http"
        return Self.normalizeOrigin("\(scheme)://\(host)")
    }

    static func normalizeOrigin(_ origin: String) -> String {
        var origin = origin.trimmingSpaces().lowercased()
        while origin.hasSuffix("/") { origin.removeLast() }
        return origin
    }

    /// The first present of: `Authorization: Bearer …`, the `auth-token` cookie (both as the
    /// API reads them, `PresentedToken`), the `token` query parameter (percent-decoded): browsers
    /// cannot set headers on a WebSocket. Empty values count as absent.
    public var token: String? {
        if let token = PresentedToken.find(authorization: head.headers.first(name: "authorization"),
                                           cookieHeaders: head.headers[canonicalForm: "cookie"].map(String.init)) {
            return token
        }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts[0] == "token", parts.count == 2, let value = Self.percentDecode(parts[1]), !value.isEmpty {
                return value
            }
        }
        return nil
    }

    /// The browser's address as nginx reports it (`X-Real-IP`, else the first `X-Forwarded-For`
    /// entry); the relay listens only on a unix socket and loopback, so only nginx sets these.
    public var remoteAddress: String {
        let candidates = [
            head.headers.first(name: "x-real-ip"),
            head.headers.first(name: "x-forwarded-for")?.split(separator: ",").first.map(String.init),
        ]
        for candidate in candidates.compactMap({ $0?.trimmingSpaces() }) where Self.looksLikeAddress(candidate) {
            return candidate
        }
        return "127.0.0.1"
    }

    /// Only hex digits, dots and colons: an address, never header injection into a FastCGI param.
    static func looksLikeAddress(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 45 && text.unicodeScalars.allSatisfy {
            $0.properties.isASCIIHexDigit || $0 == "." || $0 == ":"
        }
    }

    static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "%") {
                guard utf8.count >= 2, let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) else {
                    return nil
                }
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
