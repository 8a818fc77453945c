import Foundation
import PriviaCore
import PriviaSupport
import Testing
@testable import PriviaHTTP

/// The browser attaches the `auth-token` cookie to requests any site's page makes; a request
/// that changes something with it must come from an allowed page, with a header no form sends.
@Suite struct CrossSiteRouteTests {
    static let evil = "https://evil.example.test"

    func cookie(_ token: String) -> [String: String] { ["cookie": "theme=dark; auth-token=\(token)"] }

    func with(_ base: [String: String], _ extra: [String: String]) -> [String: String] { base.merging(extra) { $1 } }

    /// The two forgeries a cross-site HTML form can make, which used to succeed.
    @Test func aCrossSiteFormPostingWithTheCookieIsRefused() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        let query = app.call("POST", "/api/query", headers: with(cookie(token), ["origin": Self.evil, "content-type": "text/plain"]),
                             body: Array(#"{"question": "leak my notes"}"#.utf8))
        #expect(query.status == 403)
        #expect(query.json["code"]?.stringValue == "CSRF")
        #expect(query.json["detail"]?.stringValue?.contains("Cross-site request refused") == true)
        let created = app.call("POST", "/api/conversations",
                               headers: with(cookie(token), ["origin": Self.evil, "content-type": "application/x-www-form-urlencoded"]),
                               body: Array("title=planted".utf8))
        #expect(created.status == 403 && created.json["code"]?.stringValue == "CSRF")
        #expect(app.call("GET", "/api/conversations", token: token).json == .array([]), "nothing was created")
    }

    @Test func theSameRequestsFromAnAllowedPageWithTheHeaderAreAccepted() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        let page = ["origin": TestApp.allowedOrigin, "x-privia-csrf": "1"]
        let query = app.call("POST", "/api/query", headers: with(cookie(token), with(page, ["content-type": "text/plain"])),
                             body: Array(#"{"question": "hello"}"#.utf8))
        #expect(query.status == 200)
        let created = app.call("POST", "/api/conversations", headers: with(cookie(token), page))
        #expect(created.status == 201)
        let id = try #require(created.json["id"]?.stringValue)
        // The web client served by nginx itself: the browser says same-origin.
        let sameOrigin = with(cookie(token), ["sec-fetch-site": "same-origin", "x-requested-with": "XMLHttpRequest"])
        #expect(app.call("PATCH", "/api/conversations/\(id)", json: ["title": "Renamed"], headers: sameOrigin).status == 200)
        #expect(app.call("DELETE", "/api/conversations/\(id)", headers: sameOrigin).status == 204)
    }

    @Test func eachHalfOfTheCheckIsNeeded() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        let refusals: [[String: String]] = [
            ["origin": TestApp.allowedOrigin],                          // an allowed page, but no header: a form
            ["x-privia-csrf": "1"],                                     // no Origin, no Sec-Fetch-Site
            ["origin": Self.evil, "x-privia-csrf": "1"],                // a foreign page
            ["origin": "null", "x-privia-csrf": "1"],                   // a sandboxed page
            ["sec-fetch-site": "same-site", "x-privia-csrf": "1"],      // a sibling site, not in the list
            ["sec-fetch-site": "cross-site", "x-requested-with": "x"],
            ["origin": TestApp.allowedOrigin, "x-privia-csrf": ""],
        ]
        for headers in refusals {
            let response = app.call("POST", "/api/conversations", json: [:], headers: with(cookie(token), headers))
            #expect(response.status == 403 && response.json["code"]?.stringValue == "CSRF", "\(headers)")
        }
        let listedSibling = ["origin": TestApp.allowedOrigin.uppercased() + "/", "sec-fetch-site": "same-site", "x-privia-csrf": "1"]
        #expect(app.call("POST", "/api/conversations", json: [:], headers: with(cookie(token), listedSibling)).status == 201)
    }

    @Test func bearerRequestsAndReadsAreNotChecked() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        // Privia's frontend: Bearer on every call, JSON bodies, from its own origin, no extra header.
        let frontend = ["origin": "http://localhost:3000"]
        let created = app.call("POST", "/api/conversations", json: [:], token: token, headers: frontend)
        #expect(created.status == 201)
        let id = try #require(created.json["id"]?.stringValue)
        #expect(app.call("POST", "/api/query", json: ["question": "hi", "conversation_id": .string(id)], token: token, headers: frontend).status == 200)
        #expect(app.call("PATCH", "/api/conversations/\(id)", json: ["title": "t"], token: token, headers: frontend).status == 200)
        #expect(app.call("DELETE", "/api/conversations/\(id)", token: token, headers: frontend).status == 204)
        // A Bearer header wins over the cookie, whatever the Origin.
        #expect(app.call("POST", "/api/conversations", json: [:], token: token, headers: with(cookie("junk"), ["origin": Self.evil])).status == 201)
        // Reads change nothing: the cookie alone is enough, from anywhere.
        #expect(app.call("GET", "/api/conversations", headers: with(cookie(token), ["origin": Self.evil])).status == 200)
        #expect(app.call("GET", "/api/auth/me", headers: cookie(token)).status == 200)
        #expect(app.call("POST", "/api/auth/logout", token: token, headers: ["origin": Self.evil]).status == 204)
    }

    @Test func aCookieSignOutAndSignOutEverywhereAreCheckedToo() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        for path in ["/api/auth/logout", "/api/auth/logout-all"] {
            let response = app.call("POST", path, headers: with(cookie(token), ["origin": Self.evil]))
            #expect(response.status == 403 && response.json["code"]?.stringValue == "CSRF", "\(path)")
        }
        #expect(app.call("GET", "/api/auth/me", token: token).status == 200, "still signed in")
        let page = ["origin": TestApp.allowedOrigin, "x-privia-csrf": "1"]
        #expect(app.call("POST", "/api/auth/logout-all", headers: with(cookie(token), page)).status == 204)
        #expect(app.call("GET", "/api/auth/me", token: token).status == 401)
    }
}
