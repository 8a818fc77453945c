import Foundation
import PriviaSupport

/// Sign-up, sign-in, token checks and logout, over the `users` and `revoked_tokens` tables;
/// browser sessions in `browserSessions`.
public final class AccountService: Sendable {
    private let database: Database
    private let hasher: PasswordHasher
    private let signer: AccessTokenSigner
    private let knownTokens: KnownTokens
    private let epoch: AccountsEpoch?
    public let browserSessions: BrowserSessions

    /// `checkLifetime`: how long a token's check against the database is reused while no
    /// account changes (see `KnownTokens`).
    public init(database: Database, hasher: PasswordHasher, signer: AccessTokenSigner, checkLifetime: Duration = .seconds(1),
                sessionPolicy: SessionPolicy = SessionPolicy()) {
        self.database = database
        self.hasher = hasher
        self.signer = signer
        knownTokens = KnownTokens(lifetime: checkLifetime)
        epoch = AccountsEpoch(databasePath: database.path)
        browserSessions = BrowserSessions(database: database, signer: signer, epoch: epoch, policy: sessionPolicy)
    }

    static let minimumPasswordLength = 8

    /// A deliberately plain check: one `@`, a dot in the domain, no spaces; the address is
    /// proven by use, not by regex.
    static func normalizedEmail(_ raw: String) throws -> String {
        let email = raw.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard email.utf8.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
              !parts[1].hasPrefix("."), !parts[1].hasSuffix("."), !email.contains(where: { $0.isWhitespace })
        else { throw DomainError.invalid("Enter a valid email address") }
        return email
    }

    private static let userColumns = "id, email, full_name, role"
    private static func user(_ row: SQLRow) -> User {
        User(id: row.string(0), email: row.string(1), fullName: row.optionalString(2), role: row.string(3))
    }

    public func signUp(email rawEmail: String, password: String, fullName: String?) throws -> User {
        let email = try Self.normalizedEmail(rawEmail)
        guard password.count >= Self.minimumPasswordLength else {
            throw DomainError.invalid("Password must be at least \(Self.minimumPasswordLength) characters")
        }
        let name = fullName?.trimmingCharacters(in: .whitespacesAndNewlines)
        let hash = hasher.hash(password)  // slow on purpose: outside the write transaction
        return try database.write { db in
            if try db.first("SELECT 1 FROM users WHERE lower(email) = ?", [email], { _ in true }) != nil {
                throw DomainError.conflict("Email already registered")
            }
            let user = User(id: newID(), email: email, fullName: name?.isEmpty == false ? name : nil, role: "member")
            try db.run("INSERT INTO users (id, email, full_name, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                       [user.id, user.email, user.fullName, hash, user.role, StoredTime.now()])
            return user
        }
    }

    /// Checks an email and password and issues an access token for API clients.
    public func signIn(email: String, password: String) throws -> (token: String, user: User) {
        let (user, generation) = try checkPassword(email: email, password: password)
        return (signer.issue(subject: user.id, email: user.email, generation: generation).token, user)
    }

    /// Checks an email and password and starts a browser session.
    public func signInBrowser(email: String, password: String) throws -> BrowserSession {
        try browserSessions.start(for: try checkPassword(email: email, password: password).user)
    }

    /// The user with this email and password, and their token generation; the same work is done
    /// whether or not the email exists. A hash in an older format or with fewer iterations is
    /// replaced by a current one.
    private func checkPassword(email rawEmail: String, password: String) throws -> (user: User, generation: Int) {
        let email = rawEmail.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        let found = try database.read { db in
            try db.first("SELECT \(Self.userColumns), password_hash, token_generation FROM users WHERE lower(email) = ? ORDER BY rowid LIMIT 1",
                         [email]) { (Self.user($0), $0.string(4), $0.int(5)) }
        }
        guard let (user, storedHash, generation) = found, !storedHash.isEmpty else {
            hasher.burnEquivalentTime(password)
            throw DomainError.invalid("Invalid email or password")
        }
        guard case .match(let needsRehash) = hasher.verify(password, against: storedHash) else {
            throw DomainError.invalid("Invalid email or password")
        }
        if needsRehash {
            let upgraded = hasher.hash(password)
            try database.write { db in
                try db.run("UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?", [upgraded, user.id, storedHash])
            }
        }
        return (user, generation)
    }

    /// The caller behind a token: signature, expiry, revocation (of the token, of its browser
    /// session, of every token of its user), and that the user still exists.
    public func authenticate(token: String) throws -> AuthenticatedUser? {
        // Read before the database is asked, so a check is filed under a value no later than the state it saw.
        let epochBefore = epoch?.value
        guard let (claims, known) = knownTokens.lookup(token, epoch: epochBefore, verify: { signer.verify($0, now: 0) }),
              claims.expiresAt > Int(Date().timeIntervalSince1970)
        else { return nil }
        if let known { return known }
        let checkedAt = ContinuousClock.now
        let caller = try database.read { db in
            // A browser session's token also needs its session alive (a missing one has ended).
            let sessionEnded = claims.sessionID == nil ? "0"
                : "NOT EXISTS (SELECT 1 FROM session_families WHERE id = ? AND revoked_at IS NULL)"
            let arguments: [SQLBindable] = claims.sessionID.map { [claims.tokenID, $0, claims.subject] } ?? [claims.tokenID, claims.subject]
            return try db.first("""
                SELECT \(Self.userColumns), EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?), \(sessionEnded), token_generation
                FROM users WHERE id = ?
                """, arguments) { row -> AuthenticatedUser? in
                guard row.int(4) == 0, row.int(5) == 0, claims.generation >= row.int(6) else { return nil }
                return AuthenticatedUser(user: Self.user(row), tokenID: claims.tokenID, tokenExpiresAt: claims.expiresAt,
                                         sessionID: claims.sessionID)
            } ?? nil
        }
        if let caller, let epochBefore {
            knownTokens.remember(caller, for: token, claims: claims, epoch: epochBefore, checkedAt: checkedAt)
        }
        return caller
    }

    /// Revokes the caller's token until it would have expired, and ends the browser session it
    /// was issued to; forgets long-expired revocations. Every process stops accepting the token
    /// at once (the accounts epoch moves).
    public func signOut(_ caller: AuthenticatedUser) throws {
        let now = Int(Date().timeIntervalSince1970)
        try database.write { db in
            try db.run("INSERT OR IGNORE INTO revoked_tokens (jti, expires_at) VALUES (?, ?)", [caller.tokenID, caller.tokenExpiresAt])
            try db.run("DELETE FROM revoked_tokens WHERE expires_at < ?", [now])
            if let sessionID = caller.sessionID { try BrowserSessions.end(familyID: sessionID, db, now: now) }
        }
        epoch?.advance()
    }

    /// Ends every browser session of the user and refuses every access token issued to them so
    /// far, in every process at once.
    public func signOutEverywhere(userID: String) throws {
        try database.write { db in
            try db.run("UPDATE users SET token_generation = token_generation + 1 WHERE id = ?", [userID])
            try BrowserSessions.endAll(userID: userID, db, now: Int(Date().timeIntervalSince1970))
        }
        epoch?.advance()
    }

    /// Finds or creates the account for an identity a trusted OAuth front end vouches for.
    public func exchangeOAuth(provider: String, providerAccountID: String, email rawEmail: String,
                              fullName: String?, avatarURL: String?) throws -> (token: String, user: User) {
        let email = try Self.normalizedEmail(rawEmail)
        let (user, generation): (User, Int) = try database.write { db in
            if var existing = try db.first("SELECT \(Self.userColumns), provider, token_generation FROM users WHERE lower(email) = ? ORDER BY rowid LIMIT 1",
                                           [email], { (Self.user($0), $0.optionalString(4), $0.int(5)) }) {
                if existing.1 == nil || existing.1 == "" {
                    try db.run("UPDATE users SET provider = ?, provider_account_id = ? WHERE id = ?", [provider, providerAccountID, existing.0.id])
                }
                if let avatarURL, !avatarURL.isEmpty {
                    try db.run("UPDATE users SET avatar_url = ? WHERE id = ?", [avatarURL, existing.0.id])
                }
                if existing.0.fullName == nil, let fullName, !fullName.isEmpty {
                    try db.run("UPDATE users SET full_name = ? WHERE id = ?", [fullName, existing.0.id])
                    existing.0.fullName = fullName
                }
                return (existing.0, existing.2)
            }
            let user = User(id: newID(), email: email, fullName: fullName, role: "member")
            try db.run("""
                INSERT INTO users (id, email, full_name, password_hash, role, provider, provider_account_id, avatar_url, created_at)
                VALUES (?, ?, ?, '', ?, ?, ?, ?, ?)
                """, [user.id, user.email, user.fullName, user.role, provider, providerAccountID, avatarURL, StoredTime.now()])
            return (user, 0)
        }
        // The user's name may have changed: checked callers elsewhere carry the old one.
        epoch?.advance()
        return (signer.issue(subject: user.id, email: user.email, generation: generation).token, user)
    }
}
