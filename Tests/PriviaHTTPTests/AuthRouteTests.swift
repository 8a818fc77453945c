import Foundation
import PriviaSupport
import Testing
import PriviaCore
@testable import PriviaHTTP

@Suite struct AuthRouteTests {
    @Test func signupValidatesAndComparesEmailsCaseInsensitively() throws {
        let app = try TestApp()
        let created = app.call("POST", "/api/auth/signup", json: ["email": "Ann@Example.COM", "password": "longenough", "full_name": "Ann"])
        #expect(created.status == 201)
        #expect(created.json["email"]?.stringValue == "ann@example.com")
        #expect(created.json["full_name"]?.stringValue == "Ann")
        let taken = app.call("POST", "/api/auth/signup", json: ["email": "ANN@example.com", "password": "longenough"])
        #expect(taken.status == 409 && taken.json["detail"]?.stringValue == "Email already registered")
        #expect(app.call("POST", "/api/auth/signup", json: ["email": "not-an-email", "password": "longenough"]).status == 422)
        let short = app.call("POST", "/api/auth/signup", json: ["email": "bo@example.com", "password": "short"])
        #expect(short.status == 422 && short.json["code"]?.stringValue == "VALIDATION")
    }

    @Test func multipartLoginAsTheFrontendSendsIt() throws {
        let app = try TestApp()
        _ = app.call("POST", "/api/auth/signup", json: ["email": "cy@example.com", "password": "correct horse"])
        let boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
        let body = "--\(boundary)\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nCY@example.com\r\n"
            + "--\(boundary)\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\ncorrect horse\r\n--\(boundary)--\r\n"
        let login = app.call("POST", "/api/auth/login", headers: ["content-type": "multipart/form-data; boundary=\(boundary)"],
                             body: Array(body.utf8))
        #expect(login.status == 200)
        #expect(login.json["token_type"]?.stringValue == "bearer")
        #expect(login.json["user"]?["role"]?.stringValue == "member")
        let token = try #require(login.json["access_token"]?.stringValue)
        let me = app.call("GET", "/api/auth/me", token: token)
        #expect(me.status == 200 && me.json["email"]?.stringValue == "cy@example.com")
    }

    @Test func wrongPasswordAndUnknownEmailGetTheSameAnswer() throws {
        let app = try TestApp()
        _ = try app.user("dee@example.com")
        for (email, password) in [("dee@example.com", "wrong password"), ("nobody@example.com", "correct horse")] {
            let response = app.call("POST", "/api/auth/login", headers: ["content-type": "application/x-www-form-urlencoded"],
                                    body: Array("username=\(email)&password=\(password)".utf8))
            #expect(response.status == 400)
            #expect(response.json["detail"]?.stringValue == "Invalid email or password")
        }
    }

    @Test func theCookieAuthenticatesAndLogoutRevokesTheToken() throws {
        let app = try TestApp()
        let (token, _) = try app.user()
        let viaCookie = app.call("GET", "/api/auth/me", headers: ["cookie": "theme=dark; auth-token=\(token)"])
        #expect(viaCookie.status == 200)
        #expect(app.call("POST", "/api/auth/logout", token: token).status == 204)
        let after = app.call("GET", "/api/auth/me", token: token)
        #expect(after.status == 401 && after.json["code"]?.stringValue == "AUTH")
        #expect(app.call("GET", "/api/auth/me").status == 401)
        #expect(app.call("GET", "/api/auth/me", token: "not.a.token").status == 401)
    }

    @Test func anExpiredTokenIsRefusedEvenAfterItsSignatureWasChecked() throws {
        let app = try TestApp()
        let (_, id) = try app.user()
        let signer = AccessTokenSigner(secretKey: String(repeating: "s", count: 32))
        let now = Int(Date().timeIntervalSince1970)
        let fresh = signer.issue(subject: id, email: "x@example.com", now: now).token
        let expired = signer.issue(subject: id, email: "x@example.com", now: now - AccessTokenSigner.lifetime - 1).token
        #expect(app.call("GET", "/api/auth/me", token: fresh).status == 200)
        #expect(app.call("GET", "/api/auth/me", token: fresh).status == 200, "the remembered signature still works")
        #expect(app.call("GET", "/api/auth/me", token: expired).status == 401)
        #expect(app.call("GET", "/api/auth/me", token: expired).status == 401)
    }

    @Test func aTokenOfADeletedUserNoLongerWorks() throws {
        let app = try TestApp()
        let (token, id) = try app.user()
        _ = try app.database.write { try $0.run("DELETE FROM users WHERE id = ?", [id]) }
        #expect(app.call("GET", "/api/auth/me", token: token).status == 401)
    }

    @Test func oauthExchangeIsOffWithoutASecretAndGuardedWithOne() throws {
        let body: JSON = ["provider": "github", "provider_account_id": "42", "email": "oa@example.com", "full_name": "O A"]
        #expect(try TestApp().call("POST", "/api/auth/oauth", json: body).status == 404)
        let app = try TestApp(oauthSecret: "exchange-secret-1234567890")
        #expect(app.call("POST", "/api/auth/oauth", json: body).status == 401)
        #expect(app.call("POST", "/api/auth/oauth", json: body, headers: ["x-privia-exchange-secret": "wrong"]).status == 401)
        let ok = app.call("POST", "/api/auth/oauth", json: body, headers: ["x-privia-exchange-secret": "exchange-secret-1234567890"])
        #expect(ok.status == 200 && ok.json["user"]?["email"]?.stringValue == "oa@example.com")
        let token = try #require(ok.json["access_token"]?.stringValue)
        #expect(app.call("GET", "/api/auth/me", token: token).status == 200)
    }
}
