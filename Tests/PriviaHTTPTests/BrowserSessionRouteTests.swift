import Foundation
import PriviaCore
import PriviaSupport
import Testing
@testable import PriviaHTTP

/// Browser sessions over HTTP: the access token in the body, the refresh token in a cookie the
/// page's scripts cannot read, rotation, and the sign-outs.
@Suite struct BrowserSessionRouteTests {
    /// What the web client sends with every request that changes something.
    static let page = ["origin": TestApp.allowedOrigin, "x-privia-csrf": "1"]
    static let browserSession = page.merging(["x-privia-session": "browser"]) { $1 }

    func signUp(_ app: TestApp, _ email: String = "ann@example.com") {
        let created = app.call("POST", "/api/auth/signup", json: ["email": .string(email), "password": "correct horse"])
        precondition(created.status == 201)
    }

    func browserSignIn(_ app: TestApp, _ email: String = "ann@example.com") -> HTTPResponse {
        app.call("POST", "/api/auth/login", json: ["email": .string(email), "password": "correct horse"], headers: Self.browserSession)
    }

    /// The refresh token a response's `Set-Cookie` stores ("" when it clears the cookie).
    func refreshCookie(_ response: HTTPResponse) -> String? {
        let prefix = RefreshCookie.name + "="
        return response.headers.first { $0.0 == "Set-Cookie" && $0.1.hasPrefix(prefix) }
            .map { String($0.1.dropFirst(prefix.count).prefix { $0 != ";" }) }
    }

    func refresh(_ app: TestApp, _ token: String, headers: [String: String] = page) -> HTTPResponse {
        app.call("POST", "/api/auth/refresh", headers: headers.merging(["cookie": "theme=dark; \(RefreshCookie.name)=\(token)"]) { $1 })
    }

    @Test func aBrowserSignInReturnsTheAccessTokenInTheBodyAndTheRefreshTokenInAStrictCookie() throws {
        let app = try TestApp()
        signUp(app)
        let response = browserSignIn(app)
        #expect(response.status == 200)
        #expect(response.json["token_type"]?.stringValue == "bearer")
        #expect(response.json["expires_in"]?.intValue == 900)
        #expect(response.json["user"]?["email"]?.stringValue == "ann@example.com")
        #expect(response.header("cache-control") == "no-store")
        let cookie = try #require(response.header("set-cookie"))
        let attributes = Set(cookie.split(separator: ";").dropFirst().map { $0.trimmingCharacters(in: .whitespaces) })
        #expect(attributes == ["Max-Age=2592000", "Path=/api/auth", "HttpOnly", "Secure", "SameSite=Strict"])
        let refreshToken = try #require(refreshCookie(response))
        #expect(refreshToken.count >= 43)
        #expect(!response.text.contains(refreshToken), "the refresh token never reaches a script")

        let accessToken = try #require(response.json["access_token"]?.stringValue)
        #expect(app.call("GET", "/api/auth/me", token: accessToken).json["email"]?.stringValue == "ann@example.com")
    }

    @Test func apiClientsSignInExactlyAsBefore() throws {
        let app = try TestApp()
        signUp(app)
        let response = app.call("POST", "/api/auth/login", json: ["email": "ann@example.com", "password": "correct horse"])
        #expect(response.status == 200)
        #expect(response.header("set-cookie") == nil)
        #expect(response.json["expires_in"] == nil)
        let token = try #require(response.json["access_token"]?.stringValue)
        let claims = try #require(AccessTokenSigner(secretKey: String(repeating: "s", count: 32)).verify(token))
        #expect(claims.expiresAt - claims.issuedAt == AccessTokenSigner.lifetime)
    }

    @Test func aBrowserSignUpStartsASessionToo() throws {
        let app = try TestApp()
        let response = app.call("POST", "/api/auth/signup", json: ["email": "bo@example.com", "password": "correct horse"],
                                headers: Self.browserSession)
        #expect(response.status == 201)
        #expect(response.json["email"]?.stringValue == "bo@example.com" && response.json["id"]?.stringValue != nil)
        #expect(refreshCookie(response)?.isEmpty == false)
        let token = try #require(response.json["access_token"]?.stringValue)
        #expect(app.call("GET", "/api/auth/me", token: token).status == 200)
    }

    /// Another site's form could otherwise sign the browser in to an account of its choosing.
    @Test func aBrowserSignInMustPassTheCrossSiteCheck() throws {
        let app = try TestApp()
        signUp(app)
        for headers in [["x-privia-session": "browser", "origin": "https://evil.example.test", "x-privia-csrf": "1"],
                        ["x-privia-session": "browser", "origin": TestApp.allowedOrigin]] {
            let response = app.call("POST", "/api/auth/login", headers: headers.merging(["content-type": "application/x-www-form-urlencoded"]) { $1 },
                                    body: Array("username=ann%40example.com&password=correct+horse".utf8))
            #expect(response.status == 403 && response.json["code"]?.stringValue == "CSRF")
            #expect(response.header("set-cookie") == nil)
        }
        let unknownKind = app.call("POST", "/api/auth/login", json: ["email": "ann@example.com", "password": "correct horse"],
                                   headers: Self.page.merging(["x-privia-session": "phone"]) { $1 })
        #expect(unknownKind.status == 422)
    }

    @Test func aRefreshRotatesTheCookieAndGivesANewAccessToken() throws {
        let app = try TestApp()
        signUp(app)
        let first = try #require(refreshCookie(browserSignIn(app)))
        let response = refresh(app, first)
        #expect(response.status == 200)
        #expect(response.header("cache-control") == "no-store")
        let second = try #require(refreshCookie(response))
        #expect(!second.isEmpty && second != first)
        let token = try #require(response.json["access_token"]?.stringValue)
        #expect(response.json["expires_in"]?.intValue == 900)
        #expect(app.call("GET", "/api/auth/me", token: token).status == 200)
        #expect(refresh(app, second).status == 200)
    }

    @Test func aRefreshIsRefusedWithoutTheCrossSiteHeadersOrACookie() throws {
        let app = try TestApp()
        signUp(app)
        let token = try #require(refreshCookie(browserSignIn(app)))
        for headers in [["origin": TestApp.allowedOrigin], ["origin": "https://evil.example.test", "x-privia-csrf": "1"], [:]] {
            let response = refresh(app, token, headers: headers)
            #expect(response.status == 403 && response.json["code"]?.stringValue == "CSRF")
        }
        let none = app.call("POST", "/api/auth/refresh", headers: Self.page)
        #expect(none.status == 401 && none.json["code"]?.stringValue == "AUTH")
        #expect(refresh(app, token).status == 200, "the refused attempts did not use the token up")
    }

    @Test func aRotatedCookiePresentedAgainEndsTheSessionAndClearsTheCookie() throws {
        let app = try TestApp()
        signUp(app)
        let signIn = browserSignIn(app)
        let first = try #require(refreshCookie(signIn))
        let second = try #require(refreshCookie(refresh(app, first)))
        let latest = refresh(app, second)
        let third = try #require(refreshCookie(latest))

        let replay = refresh(app, first)
        #expect(replay.status == 401 && replay.json["code"]?.stringValue == "AUTH")
        #expect(refreshCookie(replay) == "", "the refused cookie is cleared")
        #expect(refresh(app, third).status == 401, "the thief's copy and the owner's cookie both end")
        for response in [signIn, latest] {
            let token = try #require(response.json["access_token"]?.stringValue)
            #expect(app.call("GET", "/api/auth/me", token: token).status == 401)
        }
    }

    @Test func twoTabsRefreshingAtOnceBothGetAWorkingSession() throws {
        let app = try TestApp()
        signUp(app)
        let first = try #require(refreshCookie(browserSignIn(app)))
        let tabA = refresh(app, first)
        let tabB = refresh(app, first)
        #expect(tabA.status == 200 && tabB.status == 200)
        #expect(refreshCookie(tabA) == refreshCookie(tabB))
        for tab in [tabA, tabB] {
            let token = try #require(tab.json["access_token"]?.stringValue)
            #expect(app.call("GET", "/api/auth/me", token: token).status == 200)
        }
        #expect(refresh(app, try #require(refreshCookie(tabB))).status == 200)
    }

    @Test func signingOutWithTheCookieEndsTheSessionAndClearsTheCookie() throws {
        let app = try TestApp()
        signUp(app)
        let signIn = browserSignIn(app)
        let cookie = try #require(refreshCookie(signIn))
        let accessToken = try #require(signIn.json["access_token"]?.stringValue)

        let refused = app.call("POST", "/api/auth/logout", headers: ["cookie": "\(RefreshCookie.name)=\(cookie)", "origin": "https://evil.example.test"])
        #expect(refused.status == 403 && refused.json["code"]?.stringValue == "CSRF")

        let out = app.call("POST", "/api/auth/logout", headers: Self.page.merging(["cookie": "\(RefreshCookie.name)=\(cookie)"]) { $1 })
        #expect(out.status == 204)
        #expect(refreshCookie(out) == "")
        #expect(out.header("set-cookie")?.contains("Max-Age=0") == true)
        #expect(refresh(app, cookie).status == 401)
        #expect(app.call("GET", "/api/auth/me", token: accessToken).status == 401)
    }

    @Test func signingOutWithTheAccessTokenAndTheCookieEndsBoth() throws {
        let app = try TestApp()
        signUp(app)
        let signIn = browserSignIn(app)
        let cookie = try #require(refreshCookie(signIn))
        let accessToken = try #require(signIn.json["access_token"]?.stringValue)
        let out = app.call("POST", "/api/auth/logout", token: accessToken, headers: ["cookie": "\(RefreshCookie.name)=\(cookie)"])
        #expect(out.status == 204 && refreshCookie(out) == "")
        #expect(app.call("GET", "/api/auth/me", token: accessToken).status == 401)
        #expect(refresh(app, cookie).status == 401)
        #expect(app.call("POST", "/api/auth/logout", headers: Self.page).status == 401, "nothing to sign out with")
    }

    @Test func signingOutEverywhereRefusesEveryEarlierTokenOfTheUserOnly() throws {
        let app = try TestApp()
        signUp(app)
        signUp(app, "bo@example.com")
        let apiToken = try #require(app.call("POST", "/api/auth/login", json: ["email": "ann@example.com", "password": "correct horse"])
            .json["access_token"]?.stringValue)
        let laptop = browserSignIn(app)
        let phone = browserSignIn(app)
        let bos = browserSignIn(app, "bo@example.com")
        let laptopToken = try #require(laptop.json["access_token"]?.stringValue)

        let out = app.call("POST", "/api/auth/logout-all", token: laptopToken)
        #expect(out.status == 204 && refreshCookie(out) == "")
        for token in [apiToken, laptopToken, try #require(phone.json["access_token"]?.stringValue)] {
            #expect(app.call("GET", "/api/auth/me", token: token).status == 401)
        }
        #expect(refresh(app, try #require(refreshCookie(phone))).status == 401)
        #expect(app.call("GET", "/api/auth/me", token: try #require(bos.json["access_token"]?.stringValue)).status == 200)
        #expect(refresh(app, try #require(refreshCookie(bos))).status == 200)

        let again = browserSignIn(app)
        #expect(app.call("GET", "/api/auth/me", token: try #require(again.json["access_token"]?.stringValue)).status == 200)
        #expect(app.call("POST", "/api/auth/logout-all").status == 401)
    }
}

extension HTTPResponse {
    var text: String { String(decoding: bodyBytes, as: UTF8.self) }
}
