import Foundation
@testable import PriviaCore
import PriviaSupport

/// A fresh database file in a temporary directory, migrated with the repository's migrations.
func makeTestDatabase() throws -> Database {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("privia-test-\(newID())").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let database = try Database(path: directory + "/privia.db")
    _ = try database.withConnection { try Migrator(migrations: Migration.load(from: migrationsDirectory)).migrate($0) }
    return database
}

/// The repository's Migrations/ folder, found from this source file's location.
let migrationsDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        let candidate = url.appendingPathComponent("Migrations").path
        if FileManager.default.fileExists(atPath: candidate + "/0001_privia_schema.sql") { return candidate }
    }
    fatalError("Migrations/ not found above \(#filePath)")
}()
