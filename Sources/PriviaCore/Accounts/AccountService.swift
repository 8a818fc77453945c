import Foundation
import PriviaSupport

/// Sign-up, sign-in, token checks and logout, over the `users` and `revoked_tokens` tables.
public final class AccountService: Sendable {
    private let database: Database
    private let hasher: PasswordHasher
    private let signer: AccessTokenSigner
    private let knownTokens: KnownTokens
    private let epoch: AccountsEpoch?

    /// `checkLifetime`: how long a token's check against the database is reused while no
    /// account changes (see `KnownTokens`).
    public init(database: Database, hasher: PasswordHasher, signer: AccessTokenSigner, checkLifetime: Duration = .seconds(1)) {
        self.database = database
        self.hasher = hasher
        self.signer = signer
        knownTokens = KnownTokens(lifetime: checkLifetime)
        epoch = AccountsEpoch(databasePath: database.path)
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

    /// Checks an email and password; the same work is done whether or not the email exists.
    /// A hash in an older format or with fewer iterations is replaced by a current one.
    public func signIn(email rawEmail: String, password: String) throws -> (token: String, user: User) {
        let email = rawEmail.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        let found = try database.read { db in
            try db.first("SELECT \(Self.userColumns), password_hash FROM users WHERE lower(email) = ? ORDER BY rowid LIMIT 1",
                         [email]) { (Self.user($0), $0.string(4)) }
        }
        guard let (user, storedHash) = found, !storedHash.isEmpty else {
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
        return (signer.issue(subject: user.id, email: user.email).token, user)
    }

    /// The caller behind a token: signature, expiry, revocation, and that the user still exists.
    public func authenticate(token: String) throws -> AuthenticatedUser? {
        // Read before the database is asked, so a check is filed under a value no later than the state it saw.
        let epochBefore = epoch?.value
        guard let (claims, known) = knownTokens.lookup(token, epoch: epochBefore, verify: { signer.verify($0, now: 0) }),
              claims.expiresAt > Int(Date().timeIntervalSince1970)
        else { return nil }
        if let known { return known }
        let checkedAt = ContinuousClock.now
        let caller = try database.read { db in
            try db.first("""
                SELECT \(Self.userColumns), EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?)
                FROM users WHERE id = ?
                """, [claims.tokenID, claims.subject]) { row -> AuthenticatedUser? in
                row.int(4) == 1 ? nil : AuthenticatedUser(user: Self.user(row), tokenID: claims.tokenID, tokenExpiresAt: claims.expiresAt)
            } ?? nil
        }
        if let caller, let epochBefore {
            knownTokens.remember(caller, for: token, claims: claims, epoch: epochBefore, checkedAt: checkedAt)
        }
        return caller
    }

    /// Revokes the caller's token until it would have expired; forgets long-expired revocations.
    /// Every process stops accepting the token at once (the accounts epoch moves).
    public func signOut(_ caller: AuthenticatedUser) throws {
        try database.write { db in
            try db.run("INSERT OR IGNORE INTO revoked_tokens (jti, expires_at) VALUES (?, ?)", [caller.tokenID, caller.tokenExpiresAt])
            try db.run("DELETE FROM revoked_tokens WHERE expires_at < ?", [Int(Date().timeIntervalSince1970)])
        }
        epoch?.advance()
    }

    /// Finds or creates the account for an identity a trusted OAuth front end vouches for.
    public func exchangeOAuth(provider: String, providerAccountID: String, email rawEmail: String,
                              fullName: String?, avatarURL: String?) throws -> (token: String, user: User) {
        let email = try Self.normalizedEmail(rawEmail)
        let user: User = try database.write { db in
            if var existing = try db.first("SELECT \(Self.userColumns), provider FROM users WHERE lower(email) = ? ORDER BY rowid LIMIT 1",
                                           [email], { (Self.user($0), $0.optionalString(4)) }) {
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
                return existing.0
            }
            let user = User(id: newID(), email: email, fullName: fullName, role: "member")
            try db.run("""
                INSERT INTO users (id, email, full_name, password_hash, role, provider, provider_account_id, avatar_url, created_at)
                VALUES (?, ?, ?, '', ?, ?, ?, ?, ?)
                """, [user.id, user.email, user.fullName, user.role, provider, providerAccountID, avatarURL, StoredTime.now()])
            return user
        }
        // The user's name may have changed: checked callers elsewhere carry the old one.
        epoch?.advance()
        return (signer.issue(subject: user.id, email: user.email).token, user)
    }
}
