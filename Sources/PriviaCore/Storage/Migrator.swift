import Foundation
import PriviaSupport

/// One numbered SQL file from `Migrations/`.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String
    public var checksum: String { Crypto.sha256(Array(sql.utf8)).hex }

    /// Reads `NNNN_name.sql` files from `directory`, in version order.
    public static func load(from directory: String) throws -> [Migration] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        var migrations: [Migration] = []
        for file in files where file.hasSuffix(".sql") {
            guard let version = Int(file.prefix(while: \.isNumber)) else {
                throw MigrationError.badFileName(file)
            }
            let sql = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            migrations.append(Migration(version: version, name: file, sql: sql))
        }
        migrations.sort { $0.version < $1.version }
        for (a, b) in zip(migrations, migrations.dropFirst()) where a.version == b.version {
            throw MigrationError.duplicateVersion(a.name, b.name)
        }
        return migrations
    }
}

public enum MigrationError: Error, CustomStringConvertible {
    case badFileName(String)
    case duplicateVersion(String, String)
    case edited(name: String, recorded: String, actual: String)
    case unknownApplied(version: Int, name: String)

    public var description: String {
        switch self {
        case .badFileName(let file):
            return "migration file \(file) does not start with a version number (expected NNNN_name.sql)"
        case .duplicateVersion(let a, let b):
            return "migrations \(a) and \(b) share a version number"
        case .edited(let name, let recorded, let actual):
            return "migration \(name) was edited after it was applied (recorded checksum \(recorded.prefix(12))…, file now \(actual.prefix(12))…); restore the file and add a new migration instead"
        case .unknownApplied(let version, let name):
            return "the database has migration \(version) (\(name)) applied, which this build does not know: it is newer than this server"
        }
    }
}

/// The state of one migration, for `privia migrate --status`.
public struct MigrationStatus: Sendable {
    public let version: Int
    public let name: String
    public let appliedAt: String?
}

/// Applies migrations in order, each in its own transaction, and records each with its checksum.
public struct Migrator {
    public let migrations: [Migration]

    public init(migrations: [Migration]) { self.migrations = migrations }

    private static let ledger = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )
        """

    private func applied(_ db: SQLiteConnection) throws -> [Int: (name: String, checksum: String, appliedAt: String)] {
        try db.execute(Self.ledger)
        var result: [Int: (String, String, String)] = [:]
        try db.query("SELECT version, name, checksum, applied_at FROM schema_migrations") { row in
            result[row.int(0)] = (row.string(1), row.string(2), row.string(3))
        }
        return result
    }

    /// Checks every applied migration against its file, then applies the pending ones.
    /// Returns the names of the migrations it applied.
    @discardableResult
    public func migrate(_ db: SQLiteConnection) throws -> [String] {
        let done = try applied(db)
        try verify(done)
        var appliedNow: [String] = []
        for migration in migrations where done[migration.version] == nil {
            try db.write {
                try db.execute(migration.sql)
                try db.run("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                           [migration.version, migration.name, migration.checksum, Timestamp.now()])
            }
            appliedNow.append(migration.name)
        }
        return appliedNow
    }

    /// Every known migration with when it was applied, or nil if pending.
    public func status(_ db: SQLiteConnection) throws -> [MigrationStatus] {
        let done = try applied(db)
        try verify(done)
        return migrations.map { MigrationStatus(version: $0.version, name: $0.name, appliedAt: done[$0.version]?.appliedAt) }
    }

    private func verify(_ done: [Int: (name: String, checksum: String, appliedAt: String)]) throws {
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for (version, record) in done.sorted(by: { $0.key < $1.key }) {
            guard let migration = known[version] else {
                throw MigrationError.unknownApplied(version: version, name: record.name)
            }
            if migration.checksum != record.checksum {
                throw MigrationError.edited(name: migration.name, recorded: record.checksum, actual: migration.checksum)
            }
        }
    }
}
