import PriviaCore
import PriviaSupport

import Foundation

extension PriviaAPI {
    /// With `X-Privia-Session: browser`, the new account is signed in to a browser session too.
    func signUp(_ request: HTTPRequest) throws -> HTTPResponse {
        let browser = try wantsBrowserSession(request)
        let body = try request.jsonObject()
        let user = try accounts.signUp(email: try body.requiredString("email"), password: try body.requiredString("password"),
                                       fullName: try body.string("full_name"))
        let account: [(String, JSON)] = [("id", .string(user.id)), ("email", .string(user.email)), ("full_name", .optional(user.fullName))]
        guard browser else { return .json(201, .object(account)) }
        return sessionResponse(201, try accounts.browserSessions.start(for: user), before: account)
    }

    /// Form fields `username` and `password` (the OAuth2 password flow Privia's frontend uses),
    /// multipart or urlencoded; a JSON body with `email` or `username` works too. With
    /// `X-Privia-Session: browser`, a browser session instead of a long-lived token.
    func signIn(_ request: HTTPRequest) throws -> HTTPResponse {
        let browser = try wantsBrowserSession(request)
        let fields: [String: String]
        if (request.header("content-type") ?? "").lowercased().hasPrefix("application/json") {
            let body = try request.jsonObject()
            fields = ["username": try body.string("username") ?? body.string("email") ?? "",
                      "password": try body.string("password") ?? ""]
        } else {
            fields = try FormBody.parse(request)
        }
        guard let email = fields["username"], !email.isEmpty else { throw APIError.validation("username is required") }
        guard let password = fields["password"], !password.isEmpty else { throw APIError.validation("password is required") }
        do {
            if browser { return sessionResponse(200, try accounts.signInBrowser(email: email, password: password)) }
            let (token, user) = try accounts.signIn(email: email, password: password)
            var response = HTTPResponse.json(200, ["access_token": .string(token), "token_type": "bearer", "user": user.json])
            response.userID = user.id
            return response
        } catch DomainError.invalid(let message) {
            throw APIError(400, .auth, message)
        }
    }

    func me(_ request: HTTPRequest) throws -> HTTPResponse {
        let caller = try caller(request)
        return HTTPResponse.json(200, caller.user.json).by(caller)
    }

    /// Revokes the access token presented, ends the browser session it or the refresh cookie
    /// belongs to, and clears that cookie. A browser whose access token has expired signs out
    /// with the cookie alone.
    func signOut(_ request: HTTPRequest) throws -> HTTPResponse {
        let presented = Self.presentedToken(request)
        let refreshToken = request.cookie(RefreshCookie.name).flatMap { $0.isEmpty ? nil : $0 }
        guard presented != nil || refreshToken != nil else { throw APIError.unauthorized("Not authenticated") }
        if presented?.source != .bearer { try crossSite.check(request) }
        var response = HTTPResponse.noContent()
        if let presented {
            if let caller = try accounts.authenticate(token: presented.token) {
                try accounts.signOut(caller)
                response = response.by(caller)
            } else if refreshToken == nil {
                throw APIError.unauthorized("Invalid or expired token")
            }
        }
        if let refreshToken {
            try accounts.browserSessions.end(refreshToken: refreshToken)
            response.headers.append(RefreshCookie.clearing)
        }
        return response
    }

    /// Ends every session of the caller and refuses every access token issued to them so far.
    func signOutEverywhere(_ request: HTTPRequest) throws -> HTTPResponse {
        let caller = try caller(request)
        try accounts.signOutEverywhere(userID: caller.user.id)
        var response = HTTPResponse.noContent().by(caller)
        response.headers.append(RefreshCookie.clearing)
        return response
    }

    /// Rotates the refresh cookie: a new access token in the body, a new refresh token in the
    /// cookie. A refused cookie is cleared, so the page stops presenting it.
    func refreshSession(_ request: HTTPRequest) throws -> HTTPResponse {
        try crossSite.check(request)
        guard let token = request.cookie(RefreshCookie.name), !token.isEmpty else {
            throw APIError.unauthorized("No session: sign in again")
        }
        do {
            return sessionResponse(200, try accounts.browserSessions.refresh(token))
        } catch DomainError.unauthorized(let message) {
            var error = APIError.unauthorized(message)
            error.headers.append(RefreshCookie.clearing)
            throw error
        }
    }

    /// Whether the request asks for a browser session (`X-Privia-Session: browser`). Such a
    /// sign-in sets a cookie, so it must pass the cross-site check: another site's form could
    /// otherwise sign the browser in to an account of its choosing.
    private func wantsBrowserSession(_ request: HTTPRequest) throws -> Bool {
        guard let kind = request.header("x-privia-session") else { return false }
        guard kind.lowercased() == "browser" else { throw APIError.validation("X-Privia-Session must be browser") }
        try crossSite.check(request)
        return true
    }

    /// A browser session's tokens: the access token in the body, the refresh token in its cookie.
    private func sessionResponse(_ status: Int, _ session: BrowserSession, before fields: [(String, JSON)] = []) -> HTTPResponse {
        var response = HTTPResponse.json(status, .object(fields + [
            ("access_token", .string(session.accessToken)), ("token_type", "bearer"),
            ("expires_in", .int(session.accessTokenLifetime)), ("user", session.user.json),
        ]))
        let maxAge = session.refreshTokenExpiresAt - Int(Date().timeIntervalSince1970)
        response.headers += [RefreshCookie.setting(session.refreshToken, maxAge: maxAge), ("Cache-Control", "no-store")]
        response.userID = session.user.id
        return response
    }

    /// Privia's OAuth exchange, made safe: off (404) unless PRIVIA_OAUTH_EXCHANGE_SECRET is set,
    /// and then only for a caller presenting that secret, as a server-side frontend does.
    func exchangeOAuth(_ request: HTTPRequest) throws -> HTTPResponse {
        guard let secret = settings.oauthExchangeSecret else { throw APIError.notFound("Not Found") }
        let presented = request.header("x-privia-exchange-secret") ?? Self.token(request) ?? ""
        guard Crypto.constantTimeEquals(Array(presented.utf8), Array(secret.utf8)) else {
            throw APIError.unauthorized("The OAuth exchange secret is missing or wrong")
        }
        let body = try request.jsonObject()
        let (token, user) = try accounts.exchangeOAuth(
            provider: try body.requiredString("provider"), providerAccountID: try body.requiredString("provider_account_id"),
            email: try body.requiredString("email"), fullName: try body.string("full_name"), avatarURL: try body.string("avatar_url"))
        var response = HTTPResponse.json(200, ["access_token": .string(token), "token_type": "bearer", "user": user.json])
        response.userID = user.id
        return response
    }
}
