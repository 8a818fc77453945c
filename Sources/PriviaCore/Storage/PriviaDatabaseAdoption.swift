import PriviaSupport

/// A database made by Privia's Python backend is upgraded in place by the same migrations as
/// a new one (0001 matches its tables). This check refuses one at an Alembic revision other
/// than the last, whose tables would not match.
public enum PriviaDatabaseAdoption {
    public static let supportedRevision = "b4e2c3d5f6a7"

    public static func check(_ db: SQLiteConnection) throws {
        let hasAlembic = try db.first("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'", [], { _ in true }) ?? false
        guard hasAlembic else { return }
        let revision = try db.first("SELECT version_num FROM alembic_version", [], { $0.string(0) })
        guard revision == supportedRevision else {
            throw ConfigurationError("this database was made by Privia's Python backend at Alembic revision \(revision ?? "none"); upgrade it there to \(supportedRevision) (`alembic upgrade head`) before starting this server")
        }
    }
}
