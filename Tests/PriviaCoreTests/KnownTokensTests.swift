import Foundation
import Testing
@testable import PriviaCore

/// A pool worker reuses a token's check against the database, and every worker drops it the
/// moment an account changes anywhere. Two `AccountService`s on one file stand for two workers.
@Suite struct KnownTokensTests {
    let signer = AccessTokenSigner(secretKey: String(repeating: "k", count: 32))

    func twoWorkers(checkLifetime: Duration = .seconds(1)) throws -> (AccountService, AccountService, Database) {
        let database = try makeTestDatabase()
        let other = try Database(path: database.path)
        return (AccountService(database: database, hasher: PasswordHasher(iterations: 1000), signer: signer, checkLifetime: checkLifetime),
                AccountService(database: other, hasher: PasswordHasher(iterations: 1000), signer: signer, checkLifetime: checkLifetime),
                database)
    }

    @Test func aTokenSignedOutInAnotherWorkerIsRefusedAtOnce() throws {
        let (first, second, _) = try twoWorkers(checkLifetime: .seconds(60))
        _ = try first.signUp(email: "ada@example.com", password: "password123", fullName: nil)
        let (token, _) = try first.signIn(email: "ada@example.com", password: "password123")
        let caller = try #require(try first.authenticate(token: token))
        #expect(try second.authenticate(token: token) != nil)

        try second.signOut(caller)
        #expect(try first.authenticate(token: token) == nil)
        #expect(try second.authenticate(token: token) == nil)
    }

    @Test func aNameChangedByAnOAuthSignInElsewhereIsSeenAtOnce() throws {
        let (first, second, _) = try twoWorkers(checkLifetime: .seconds(60))
        _ = try first.signUp(email: "grace@example.com", password: "password123", fullName: nil)
        let (token, _) = try first.signIn(email: "grace@example.com", password: "password123")
        #expect(try first.authenticate(token: token)?.user.fullName == nil)

        _ = try second.exchangeOAuth(provider: "github", providerAccountID: "42", email: "grace@example.com",
                                     fullName: "Grace Hopper", avatarURL: nil)
        #expect(try first.authenticate(token: token)?.user.fullName == "Grace Hopper")
    }

    /// A change made outside Privia (here a user deleted with plain SQL) does not move the epoch:
    /// the reused check hides it for at most the check lifetime.
    @Test func aUserDeletedBehindPriviasBackIsRefusedOnceTheCheckLifetimeIsOver() throws {
        let (accounts, _, database) = try twoWorkers(checkLifetime: .milliseconds(300))
        let user = try accounts.signUp(email: "linus@example.com", password: "password123", fullName: nil)
        let (token, _) = try accounts.signIn(email: "linus@example.com", password: "password123")
        #expect(try accounts.authenticate(token: token) != nil)

        try database.write { try $0.run("DELETE FROM users WHERE id = ?", [user.id]) }
        #expect(try accounts.authenticate(token: token) != nil, "the check made a moment ago is reused")
        Thread.sleep(forTimeInterval: 0.35)
        #expect(try accounts.authenticate(token: token) == nil)
    }
}
