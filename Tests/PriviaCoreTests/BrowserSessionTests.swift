import Foundation
import PriviaSupport
import Testing
@testable import PriviaCore

/// Browser sessions: refresh tokens rotated on every use, a copied token ending its whole
/// family, sign-out and sign-out everywhere reaching access tokens already issued.
@Suite struct BrowserSessionTests {
    let signer = AccessTokenSigner(secretKey: String(repeating: "k", count: 32))
    let now = Int(Date().timeIntervalSince1970)

    func makeAccounts(on database: Database? = nil, policy: SessionPolicy = SessionPolicy()) throws -> AccountService {
        AccountService(database: try database ?? makeTestDatabase(), hasher: PasswordHasher(iterations: 1000), signer: signer,
                       checkLifetime: .seconds(60), sessionPolicy: policy)
    }

    func member(_ accounts: AccountService, _ email: String = "ada@example.com") throws -> User {
        try accounts.signUp(email: email, password: "password123", fullName: nil)
    }

    func isEnded(_ attempt: () throws -> BrowserSession) -> Bool {
        do {
            _ = try attempt()
            return false
        } catch DomainError.unauthorized {
            return true
        } catch {
            return false
        }
    }

    @Test func aRefreshRotatesTheTokenAndGivesAShortLivedAccessToken() throws {
        let accounts = try makeAccounts()
        let user = try member(accounts)
        let first = try accounts.signInBrowser(email: "ada@example.com", password: "password123")
        #expect(first.user == user)
        #expect(first.accessTokenLifetime == 15 * 60)
        #expect(first.refreshTokenExpiresAt >= now + 30 * 86400)
        let claims = try #require(signer.verify(first.accessToken))
        #expect(claims.expiresAt - claims.issuedAt == 15 * 60)
        #expect(claims.sessionID != nil)

        let second = try accounts.browserSessions.refresh(first.refreshToken)
        #expect(second.refreshToken != first.refreshToken)
        #expect(second.accessToken != first.accessToken)
        #expect(signer.verify(second.accessToken)?.sessionID == claims.sessionID, "one session, one family")
        #expect(try accounts.authenticate(token: second.accessToken)?.user.id == user.id)
        #expect(try accounts.authenticate(token: first.accessToken)?.user.id == user.id, "rotation does not end the session")
    }

    @Test func refreshTokensAreStoredHashedNeverInClear() throws {
        let database = try makeTestDatabase()
        let accounts = try makeAccounts(on: database)
        _ = try member(accounts)
        let session = try accounts.signInBrowser(email: "ada@example.com", password: "password123")
        let next = try accounts.browserSessions.refresh(session.refreshToken)
        let stored = try database.read { db in
            try db.all("SELECT token_hash, family_id FROM refresh_tokens", []) { [$0.string(0), $0.string(1)] }
        }.flatMap { $0 }
        #expect(stored.count == 4)
        for token in [session.refreshToken, next.refreshToken] {
            #expect(!stored.contains { $0.contains(token) })
            #expect(stored.contains(Crypto.sha256(Array(token.utf8)).hex))
        }
    }

    /// A rotated token presented once its successor has been used too can only be a copy.
    @Test func aRotatedTokenPresentedAgainEndsTheWholeFamily() throws {
        let accounts = try makeAccounts()
        _ = try member(accounts)
        let first = try accounts.signInBrowser(email: "ada@example.com", password: "password123")
        let second = try accounts.browserSessions.refresh(first.refreshToken)
        let third = try accounts.browserSessions.refresh(second.refreshToken)
        #expect(try accounts.authenticate(token: third.accessToken) != nil)

        #expect(isEnded { try accounts.browserSessions.refresh(first.refreshToken) })
        #expect(isEnded { try accounts.browserSessions.refresh(third.refreshToken) }, "the newest token of the family ends too")
        for token in [first.accessToken, second.accessToken, third.accessToken] {
            #expect(try accounts.authenticate(token: token) == nil)
        }
    }

    @Test func twoTabsRefreshingWithTheSameTokenAtOnceBothKeepTheSession() throws {
        let accounts = try makeAccounts()
        _ = try member(accounts)
        let first = try accounts.signInBrowser(email: "ada@example.com", password: "password123")
        let tabA = try accounts.browserSessions.refresh(first.refreshToken, now: now)
        let tabB = try accounts.browserSessions.refresh(first.refreshToken, now: now + 3)
        #expect(tabB.refreshToken == tabA.refreshToken, "the same successor, so the shared cookie jar agrees")
        #expect(tabB.accessToken != tabA.accessToken)
        #expect(try accounts.authenticate(token: tabA.accessToken) != nil)
        #expect(try accounts.authenticate(token: tabB.accessToken) != nil)
        let next = try accounts.browserSessions.refresh(tabB.refreshToken, now: now + 4)
        #expect(try accounts.authenticate(token: next.accessToken) != nil)
    }

    @Test func theSameTokenAfterTheGraceWindowEndsTheFamily() throws {
        let accounts = try makeAccounts(policy: SessionPolicy(reuseGrace: 5))
        _ = try member(accounts)
        let first = try accounts.signInBrowser(email: "ada@example.com", password: "password123")
        let second = try accounts.browserSessions.refresh(first.refreshToken, now: now)
        #expect(isEnded { try accounts.browserSessions.refresh(first.refreshToken, now: now + 6) })
        #expect(isEnded { try accounts.browserSessions.refresh(second.refreshToken, now: now + 7) })
        #expect(try accounts.authenticate(token: second.accessToken) == nil)
    }

    @Test func theLifetimeSlidesWithEachRefreshAndAnUnusedTokenExpires() throws {
        let day = 86400
        let accounts = try makeAccounts(policy: SessionPolicy(refreshTokenLifetime: 10 * day))
        let first = try accounts.browserSessions.start(for: try member(accounts, "bob@example.com"), now: now)
        let second = try accounts.browserSessions.refresh(first.refreshToken, now: now + 9 * day)
        #expect(second.refreshTokenExpiresAt == now + 19 * day)
        let third = try accounts.browserSessions.refresh(second.refreshToken, now: now + 18 * day)
        #expect(isEnded { try accounts.browserSessions.refresh(third.refreshToken, now: now + 28 * day) })
    }

    @Test func expiredTokensAndTheirEndedFamiliesAreForgotten() throws {
        let database = try makeTestDatabase()
        let accounts = try makeAccounts(on: database, policy: SessionPolicy(refreshTokenLifetime: 100))
        let ada = try member(accounts)
        _ = try accounts.browserSessions.start(for: ada, now: now - 200)
        _ = try accounts.browserSessions.start(for: ada, now: now)
        let counts = try database.read { db in
            (try db.first("SELECT count(*) FROM refresh_tokens", []) { $0.int(0) }, try db.first("SELECT count(*) FROM session_families", []) { $0.int(0) })
        }
        #expect(counts.0 == 1 && counts.1 == 1)
    }

    @Test func signingOutWithTheCookieEndsTheSessionAndItsAccessTokensInEveryWorker() throws {
        let database = try makeTestDatabase()
        let first = try makeAccounts(on: database)
        let second = try makeAccounts(on: try Database(path: database.path))
        _ = try member(first)
        let session = try first.signInBrowser(email: "ada@example.com", password: "password123")
        #expect(try second.authenticate(token: session.accessToken) != nil)

        #expect(try first.browserSessions.end(refreshToken: session.refreshToken))
        #expect(try second.authenticate(token: session.accessToken) == nil, "the other worker's remembered check is dropped")
        #expect(isEnded { try second.browserSessions.refresh(session.refreshToken) })
        #expect(try first.browserSessions.end(refreshToken: session.refreshToken) == false)
    }

    @Test func signingOutWithTheAccessTokenEndsItsSessionToo() throws {
        let accounts = try makeAccounts()
        _ = try member(accounts)
        let session = try accounts.signInBrowser(email: "ada@example.com", password: "password123")
        let rotated = try accounts.browserSessions.refresh(session.refreshToken)
        try accounts.signOut(try #require(try accounts.authenticate(token: rotated.accessToken)))
        #expect(isEnded { try accounts.browserSessions.refresh(rotated.refreshToken) })
        #expect(try accounts.authenticate(token: session.accessToken) == nil)
    }

    @Test func signingOutEverywhereRefusesEveryTokenIssuedBeforeButNotAfter() throws {
        let database = try makeTestDatabase()
        let accounts = try makeAccounts(on: database)
        let otherWorker = try makeAccounts(on: try Database(path: database.path))
        _ = try member(accounts)
        let bystander = try member(accounts, "bob@example.com")
        let (apiToken, _) = try accounts.signIn(email: "ada@example.com", password: "password123")
        let laptop = try accounts.signInBrowser(email: "ada@example.com", password: "password123")
        let phone = try accounts.signInBrowser(email: "ada@example.com", password: "password123")
        let bobs = try accounts.browserSessions.start(for: bystander)
        for token in [apiToken, laptop.accessToken, phone.accessToken] {
            #expect(try otherWorker.authenticate(token: token) != nil)
        }

        let caller = try #require(try accounts.authenticate(token: phone.accessToken))
        try accounts.signOutEverywhere(userID: caller.user.id)
        for token in [apiToken, laptop.accessToken, phone.accessToken] {
            #expect(try otherWorker.authenticate(token: token) == nil)
            #expect(try accounts.authenticate(token: token) == nil)
        }
        #expect(isEnded { try accounts.browserSessions.refresh(laptop.refreshToken) })
        #expect(isEnded { try accounts.browserSessions.refresh(phone.refreshToken) })
        #expect(try accounts.authenticate(token: bobs.accessToken) != nil, "another user's session is untouched")

        // Signing in again right away, within the same second, works.
        let (fresh, _) = try accounts.signIn(email: "ada@example.com", password: "password123")
        #expect(try otherWorker.authenticate(token: fresh) != nil)
        let again = try accounts.signInBrowser(email: "ada@example.com", password: "password123")
        #expect(try accounts.authenticate(token: try accounts.browserSessions.refresh(again.refreshToken).accessToken) != nil)
    }

    @Test func anUnknownOrMalformedRefreshTokenIsRefused() throws {
        let accounts = try makeAccounts()
        #expect(isEnded { try accounts.browserSessions.refresh("") })
        #expect(isEnded { try accounts.browserSessions.refresh(Base64URL.encode(Crypto.randomBytes(32))) })
        #expect(try accounts.browserSessions.end(refreshToken: "nothing") == false)
    }
}
