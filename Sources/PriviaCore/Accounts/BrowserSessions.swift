import Foundation
import PriviaSupport

/// How long a browser session and its tokens last.
public struct SessionPolicy: Sendable {
    /// Seconds an access token of a browser session lasts: short, as the page keeps it in memory
    /// and gets another with its refresh token.
    public var accessTokenLifetime: Int
    /// Seconds a refresh token lasts. Each refresh issues a new one for the whole lifetime, so
    /// a session ends after this long without a refresh.
    public var refreshTokenLifetime: Int
    /// Seconds after a rotation during which the rotated token still gets its successor: two
    /// tabs that refreshed with the same cookie at once both keep a working session.
    public var reuseGrace: Int

    public init(accessTokenLifetime: Int = 15 * 60, refreshTokenLifetime: Int = 30 * 24 * 60 * 60, reuseGrace: Int = 10) {
        self.accessTokenLifetime = accessTokenLifetime
        self.refreshTokenLifetime = refreshTokenLifetime
        self.reuseGrace = reuseGrace
    }
}

/// A browser session as its page gets it: an access token to keep in memory, a refresh token
/// for an HttpOnly cookie.
public struct BrowserSession: Sendable {
    public var user: User
    public var accessToken: String
    /// Seconds the access token lasts.
    public var accessTokenLifetime: Int
    public var refreshToken: String
    public var refreshTokenExpiresAt: Int
}

/// Browser sessions, over the `session_families` and `refresh_tokens` tables.
///
/// A sign-in starts a family. A refresh rotates the token it presents: the token is marked
/// rotated and its successor issued. The successor is derived from the token with a key only the
/// server holds, so a second tab presenting the same token within the grace window gets the same
/// successor (and the shared cookie jar stays consistent) without the successor being kept in
/// clear. A rotated token presented later, or once its successor was rotated in turn, has been
/// copied: the family ends, and so does every access token issued to it.
public final class BrowserSessions: Sendable {
    private let database: Database
    private let signer: AccessTokenSigner
    private let successorKey: [UInt8]
    private let epoch: AccountsEpoch?
    public let policy: SessionPolicy

    init(database: Database, signer: AccessTokenSigner, epoch: AccountsEpoch?, policy: SessionPolicy) {
        self.database = database
        self.signer = signer
        self.successorKey = signer.derivedKey(for: "refresh token successor")
        self.epoch = epoch
        self.policy = policy
    }

    static func hash(_ token: String) -> String { Crypto.sha256(Array(token.utf8)).hex }

    func successor(of token: String) -> String {
        Base64URL.encode(Crypto.hmacSHA256(key: successorKey, message: Array(token.utf8)))
    }

    /// Starts a session for `user`, who has just proven who they are.
    public func start(for user: User, now: Int = Int(Date().timeIntervalSince1970)) throws -> BrowserSession {
        let refreshToken = Base64URL.encode(Crypto.randomBytes(32))
        let familyID = newID()
        let expiresAt = now + policy.refreshTokenLifetime
        let generation = try database.write { db -> Int in
            try db.run("INSERT INTO session_families (id, user_id, created_at) VALUES (?, ?, ?)", [familyID, user.id, now])
            try db.run("INSERT INTO refresh_tokens (token_hash, family_id, expires_at) VALUES (?, ?, ?)",
                       [Self.hash(refreshToken), familyID, expiresAt])
            try Self.forgetExpired(db, now: now)
            return try db.first("SELECT token_generation FROM users WHERE id = ?", [user.id]) { $0.int(0) } ?? 0
        }
        return session(user: user, familyID: familyID, generation: generation, refreshToken: refreshToken,
                       expiresAt: expiresAt, now: now)
    }

    private enum Decision {
        case issue(user: User, familyID: String, generation: Int, token: String, expiresAt: Int)
        case refuse(String)
        case endFamily(String)
    }

    static let endedMessage = "The session has ended; sign in again"
    static let reusedMessage = "This session was ended because its refresh token was used twice; sign in again"

    /// Rotates `refreshToken`: a new session's tokens, or `DomainError.unauthorized`.
    public func refresh(_ refreshToken: String, now: Int = Int(Date().timeIntervalSince1970)) throws -> BrowserSession {
        let tokenHash = Self.hash(refreshToken)
        let successor = successor(of: refreshToken)
        let successorHash = Self.hash(successor)
        let decision = try database.write { db -> Decision in
            let found = try db.first("""
                SELECT t.family_id, t.expires_at, t.rotated_at, f.revoked_at, u.id, u.email, u.full_name, u.role, u.token_generation
                FROM refresh_tokens t JOIN session_families f ON f.id = t.family_id JOIN users u ON u.id = f.user_id
                WHERE t.token_hash = ?
                """, [tokenHash]) { row in
                (familyID: row.string(0), expiresAt: row.int(1), rotatedAt: row.optionalInt(2), ended: !row.isNull(3),
                 user: User(id: row.string(4), email: row.string(5), fullName: row.optionalString(6), role: row.string(7)),
                 generation: row.int(8))
            }
            guard let found, !found.ended, found.expiresAt > now else { return .refuse(Self.endedMessage) }
            if let rotatedAt = found.rotatedAt {
                // Another tab's refresh with the same cookie, a moment ago: the same successor again.
                if now - rotatedAt <= policy.reuseGrace,
                   let next = try db.first("SELECT expires_at FROM refresh_tokens WHERE token_hash = ? AND rotated_at IS NULL",
                                           [successorHash], { $0.int(0) }),
                   next > now {
                    return .issue(user: found.user, familyID: found.familyID, generation: found.generation,
                                  token: successor, expiresAt: next)
                }
                try db.run("UPDATE session_families SET revoked_at = ?, revoked_reason = 'refresh token reused' WHERE id = ?",
                           [now, found.familyID])
                return .endFamily(found.familyID)
            }
            let expiresAt = now + policy.refreshTokenLifetime
            try db.run("UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ?", [now, tokenHash])
            try db.run("INSERT INTO refresh_tokens (token_hash, family_id, expires_at) VALUES (?, ?, ?)",
                       [successorHash, found.familyID, expiresAt])
            return .issue(user: found.user, familyID: found.familyID, generation: found.generation,
                          token: successor, expiresAt: expiresAt)
        }
        switch decision {
        case .issue(let user, let familyID, let generation, let token, let expiresAt):
            return session(user: user, familyID: familyID, generation: generation, refreshToken: token, expiresAt: expiresAt, now: now)
        case .refuse(let message):
            throw DomainError.unauthorized(message)
        case .endFamily:
            epoch?.advance()  // access tokens of the family, checked and remembered anywhere, are asked again
            throw DomainError.unauthorized(Self.reusedMessage)
        }
    }

    /// Ends the session `refreshToken` belongs to, rotated or not; false if there is none to end.
    @discardableResult
    public func end(refreshToken: String, now: Int = Int(Date().timeIntervalSince1970)) throws -> Bool {
        let ended = try database.write { db in
            try db.run("""
                UPDATE session_families SET revoked_at = ?, revoked_reason = 'signed out'
                WHERE id = (SELECT family_id FROM refresh_tokens WHERE token_hash = ?) AND revoked_at IS NULL
                """, [now, Self.hash(refreshToken)]) > 0
        }
        if ended { epoch?.advance() }
        return ended
    }

    /// Ends the session with this id (an access token's `sid`). The caller advances the epoch.
    static func end(familyID: String, _ db: SQLiteConnection, now: Int) throws {
        try db.run("UPDATE session_families SET revoked_at = ?, revoked_reason = 'signed out' WHERE id = ? AND revoked_at IS NULL",
                   [now, familyID])
    }

    /// Ends every session of a user. The caller advances the epoch.
    static func endAll(userID: String, _ db: SQLiteConnection, now: Int) throws {
        try db.run("""
            UPDATE session_families SET revoked_at = ?, revoked_reason = 'signed out everywhere'
            WHERE user_id = ? AND revoked_at IS NULL
            """, [now, userID])
    }

    /// Forgets expired refresh tokens, and the families left without one: an expired token is
    /// refused as unknown, and its reuse no longer matters.
    static func forgetExpired(_ db: SQLiteConnection, now: Int) throws {
        let families = Set(try db.all("DELETE FROM refresh_tokens WHERE expires_at <= ? RETURNING family_id", [now]) { $0.string(0) })
        for family in families {
            try db.run("DELETE FROM session_families WHERE id = ? AND NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = ?)",
                       [family, family])
        }
    }

    private func session(user: User, familyID: String, generation: Int, refreshToken: String, expiresAt: Int, now: Int) -> BrowserSession {
        let access = signer.issue(subject: user.id, email: user.email, now: now, lifetime: policy.accessTokenLifetime,
                                  sessionID: familyID, generation: generation)
        return BrowserSession(user: user, accessToken: access.token, accessTokenLifetime: policy.accessTokenLifetime,
                              refreshToken: refreshToken, refreshTokenExpiresAt: expiresAt)
    }
}
