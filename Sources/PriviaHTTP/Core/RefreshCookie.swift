/// The cookie that carries a browser session's refresh token.
///
/// `HttpOnly`: no script reads it, so a script injected into the page cannot carry the session
/// away. `Secure` (and the `__Secure-` prefix, which makes browsers insist on it): HTTPS only.
/// `SameSite=Strict`: never sent with a request another site starts. `Path=/api/auth`: sent only
/// to the endpoints that use it, not with every API call.
public enum RefreshCookie {
    public static let name = "__Secure-privia-refresh"
    public static let path = "/api/auth"

    static let attributes = "Path=\(path); HttpOnly; Secure; SameSite=Strict"

    /// The `Set-Cookie` value that stores `token` for `maxAge` seconds.
    public static func setting(_ token: String, maxAge: Int) -> (String, String) {
        ("Set-Cookie", "\(name)=\(token); Max-Age=\(max(0, maxAge)); \(attributes)")
    }

    /// The `Set-Cookie` value that removes it.
    public static let clearing = ("Set-Cookie", "\(name)=; Max-Age=0; \(attributes)")
}
