import Foundation

/// Where a request carries its access token, the same for the API and the relay's upgrade:
/// `Authorization: Bearer …`, else the `auth-token` cookie (percent-decoded: Privia's frontend
/// writes it with `encodeURIComponent`). Empty values count as absent.
///
/// Runs on every authenticated request, so it looks at bytes rather than going through
/// Foundation's character sets.
public enum PresentedToken {
    public static let cookieName = "auth-token"

    /// Where a token came from. A cookie goes along with any request the browser makes, a
    /// cross-site form's too; an `Authorization` header only with those a page's script makes.
    public enum Source: Sendable { case bearer, cookie }

    public static func find(authorization: String?, cookieHeaders: [String]) -> String? {
        locate(authorization: authorization, cookieHeaders: cookieHeaders)?.token
    }

    public static func locate(authorization: String?, cookieHeaders: [String]) -> (token: String, source: Source)? {
        if let authorization, let token = bearer(authorization) { return (token, .bearer) }
        for header in cookieHeaders {
            if let cookie = cookie(cookieName, in: header), !cookie.isEmpty {
                return (cookie.contains("%") ? (cookie.removingPercentEncoding ?? cookie) : cookie, .cookie)
            }
        }
        return nil
    }

    /// The token of an `Authorization` value with the Bearer scheme (any case), spaces trimmed.
    static func bearer(_ header: String) -> String? {
        let bytes = Array(header.utf8).drop(while: { $0 == 0x20 })
        let scheme = Array("bearer ".utf8)
        guard bytes.count > scheme.count, zip(bytes, scheme).allSatisfy({ $0 | 0x20 == $1 }) else { return nil }
        let token = bytes.dropFirst(scheme.count).drop(while: { $0 == 0x20 })
        let end = token.lastIndex(where: { $0 != 0x20 }).map { $0 + 1 } ?? token.startIndex
        return token.startIndex < end ? String(decoding: token[..<end], as: UTF8.self) : nil
    }

    /// The value of cookie `name` in one `Cookie` header, spaces around it trimmed.
    public static func cookie(_ name: String, in header: String) -> String? {
        for pair in header.split(separator: ";") {
            let trimmed = pair.drop(while: { $0 == " " })
            if let eq = trimmed.firstIndex(of: "="), trimmed[..<eq] == name {
                return String(trimmed[trimmed.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }
}
