import Foundation
import PriviaSupport
import Testing
@testable import PriviaCore

@Suite struct MigratorTests {
    func scratchDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("migrations-\(newID())").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func appliesPendingMigrationsInOrderOnce() throws {
        let dir = try scratchDirectory()
        try "CREATE TABLE a (x);".write(toFile: dir + "/0001_a.sql", atomically: true, encoding: .utf8)
        try "INSERT INTO a VALUES (1);".write(toFile: dir + "/0002_b.sql", atomically: true, encoding: .utf8)
        let db = try SQLiteConnection(path: dir + "/test.db")
        let migrator = Migrator(migrations: try Migration.load(from: dir))
        #expect(try migrator.migrate(db) == ["0001_a.sql", "0002_b.sql"])
        #expect(try migrator.migrate(db) == [])
        #expect(try db.first("SELECT count(*) FROM a", [], { $0.int(0) }) == 1)
        #expect(try migrator.status(db).allSatisfy { $0.appliedAt != nil })
    }

    @Test func anEditedAppliedMigrationRefusesToStart() throws {
        let dir = try scratchDirectory()
        try "CREATE TABLE a (x);".write(toFile: dir + "/0001_a.sql", atomically: true, encoding: .utf8)
        let db = try SQLiteConnection(path: dir + "/test.db")
        try Migrator(migrations: try Migration.load(from: dir)).migrate(db)
        try "CREATE TABLE a (x, y);".write(toFile: dir + "/0001_a.sql", atomically: true, encoding: .utf8)
        #expect {
            try Migrator(migrations: try Migration.load(from: dir)).migrate(db)
        } throws: { error in
            "\(error)".contains("0001_a.sql was edited after it was applied")
        }
    }

    @Test func aFailingMigrationLeavesNothingHalfApplied() throws {
        let dir = try scratchDirectory()
        try "CREATE TABLE a (x); CREATE TABLE oops (;".write(toFile: dir + "/0001_a.sql", atomically: true, encoding: .utf8)
        let db = try SQLiteConnection(path: dir + "/test.db")
        #expect(throws: SQLiteError.self) { try Migrator(migrations: try Migration.load(from: dir)).migrate(db) }
        #expect(try db.first("SELECT count(*) FROM sqlite_master WHERE name = 'a'", [], { $0.int(0) }) == 0)
    }

    @Test func theRepositoryMigrationsApplyToAFreshDatabase() throws {
        let database = try makeTestDatabase()
        let tables = try database.read { try $0.all("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", [], { $0.string(0) }) }
        #expect(tables.contains("users") && tables.contains("conversations") && tables.contains("messages"))
        #expect(try database.read { try $0.first("PRAGMA journal_mode", [], { $0.string(0) }) } == "wal")
        #expect(try database.read { try $0.first("PRAGMA foreign_keys", [], { $0.int(0) }) } == 1)
    }
}
