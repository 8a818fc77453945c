import PriviaCore

/// The check a state-changing request must pass when a cookie authenticates it: the browser
/// attaches cookies to the requests other sites' pages make too (cross-site request forgery).
///
/// - It comes from an allowed page: `Sec-Fetch-Site: same-origin` (or `none`: the user's own
///   action, not a page's), else an `Origin` in PRIVIA_ALLOWED_ORIGINS. Browsers set both
///   headers and a page cannot.
/// - It carries `X-Privia-CSRF` (or `X-Requested-With`): no HTML form can send a header, and a
///   script on another origin can only after a CORS preflight, which nginx refuses outside the
///   allowlist. A JSON content type is not enough: it rests on the preflight alone.
///
/// A request with `Authorization: Bearer` is not checked: only a script sets that header, under
/// the same preflight, and the token is not something the browser attaches on its own.
public struct CrossSiteCheck: Sendable {
    public static let headerName = "X-Privia-CSRF"

    /// Normalized as `Configuration.normalizedOrigin` does.
    public let allowedOrigins: Set<String>

    public init(allowedOrigins: Set<String>) {
        self.allowedOrigins = allowedOrigins
    }

    /// Whether a request may change something. Every method but the safe ones counts, so an
    /// unusual one is checked rather than let through.
    public static func isStateChanging(_ method: String) -> Bool {
        method != "GET" && method != "HEAD" && method != "OPTIONS"
    }

    /// Throws a 403 `CSRF` error unless `request` passes.
    public func check(_ request: HTTPRequest) throws {
        let fetchSite = request.header("sec-fetch-site")?.lowercased()
        let fromAllowedPage = fetchSite == "same-origin" || fetchSite == "none"
            || request.header("origin").map { allowedOrigins.contains(Configuration.normalizedOrigin($0)) } == true
        guard fromAllowedPage else {
            throw APIError(403, .csrf, "Cross-site request refused: it must come from an allowed origin")
        }
        guard request.header("x-privia-csrf")?.isEmpty == false || request.header("x-requested-with")?.isEmpty == false else {
            throw APIError(403, .csrf, "Cross-site request refused: a request authenticated by a cookie must carry the \(Self.headerName) header")
        }
    }
}
