import Foundation
import PriviaSupport
import Testing
@testable import PriviaCore

/// A database as Privia's Python backend leaves it at Alembic revision b4e2c3d5f6a7 (the
/// fixture the end-to-end adoption test uses too).
let priviaAlembicSchema: String = {
    let path = URL(fileURLWithPath: migrationsDirectory).deletingLastPathComponent()
        .appendingPathComponent("tests/fixtures/privia-alembic-b4e2c3d5f6a7.sql").path
    return try! String(contentsOfFile: path, encoding: .utf8)
}()

/// Privia's stored password format: hex salt text used as bytes, 100,000 rounds.
func priviaLegacyHash(_ password: String, salt: String = "00112233445566778899aabbccddeeff") -> String {
    salt + "$" + Crypto.pbkdf2SHA256(password: Array(password.utf8), salt: Array(salt.utf8), iterations: 100_000).hex
}

@Suite struct PriviaAdoptionTests {
    func priviaDatabase() throws -> (Database, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("adopt-\(newID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/privia.db"
        let raw = try SQLiteConnection(path: path)
        try raw.execute(priviaAlembicSchema)
        try raw.run("INSERT INTO users VALUES ('u-1', 'Old.User@example.com', 'Old User', ?, 'member', NULL, NULL, NULL)",
                    [priviaLegacyHash("legacy-pass")])
        try raw.run("INSERT INTO conversations VALUES ('c-1', 'u-1', 'Trip', '2026-02-08 12:57:25.194236', '2026-02-08 12:58:00.000001', 'active')")
        try raw.run("INSERT INTO messages VALUES ('m-1', 'c-1', 'user', 'Plan a trip', '2026-02-08 12:57:25.200000')")
        try raw.run("INSERT INTO messages VALUES ('m-2', 'c-1', 'assistant', 'Sure.', '2026-02-08 12:57:26.000000')")
        return (try Database(path: path), path)
    }

    @Test func aPriviaDatabaseIsUpgradedInPlaceAndItsUsersSignIn() throws {
        let (database, _) = try priviaDatabase()
        try database.withConnection { db in
            try PriviaDatabaseAdoption.check(db)
            #expect(try Migrator(migrations: Migration.load(from: migrationsDirectory)).migrate(db).count >= 2)
        }
        let accounts = AccountService(database: database, hasher: PasswordHasher(iterations: 1000),
                                      signer: AccessTokenSigner(secretKey: String(repeating: "s", count: 32)))
        #expect(throws: DomainError.self) { try accounts.signIn(email: "old.user@example.com", password: "wrong") }
        let (token, user) = try accounts.signIn(email: "old.user@example.com", password: "legacy-pass")
        #expect(user.id == "u-1" && user.fullName == "Old User")
        #expect(try accounts.authenticate(token: token)?.user.id == "u-1")
        let rehashed = try database.read { try $0.first("SELECT password_hash FROM users WHERE id = 'u-1'", [], { $0.string(0) }) }
        #expect(rehashed?.hasPrefix("pbkdf2_sha256$1000$") == true, "the legacy hash is replaced at sign-in")
        _ = try accounts.signIn(email: "old.user@example.com", password: "legacy-pass")

        let conversations = ConversationStore(database: database)
        let detail = try conversations.detail(userID: "u-1", id: "c-1")
        #expect(detail.messages.map(\.content) == ["Plan a trip", "Sure."])
        #expect(detail.summary.messageCount == 2, "counts are filled in when a database is adopted")
        #expect(try JSONParser.parse(detail.encoded())["created_at"]?.stringValue == "2026-02-08T12:57:25.194236Z")
        #expect(detail.messages.allSatisfy { $0.status == .complete })
    }

    @Test func anOlderAlembicRevisionIsRefusedWithAClearMessage() throws {
        let (database, _) = try priviaDatabase()
        try database.write { try $0.run("UPDATE alembic_version SET version_num = 'a3f1b2c4d5e6'") }
        _ = try database.withConnection { db in
            #expect { try PriviaDatabaseAdoption.check(db) } throws: { "\($0)".contains("alembic upgrade head") }
        }
    }
}
