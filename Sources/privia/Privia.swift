import ArgumentParser
import Foundation
import PriviaCore

/// `privia`: the operator's command line.
@main
struct Privia: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Operate a Privia server: database migrations and configuration checks.",
        version: PriviaVersion.current,
        subcommands: [Migrate.self, CheckConfig.self]
    )
}

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending migrations from PRIVIA_MIGRATIONS_DIR to PRIVIA_DATA_DIR/privia.db (the pool also does this at start).")

    @Flag(help: "List every migration and when it was applied; change nothing.")
    var status = false

    func run() throws {
        let config = try Configuration.fromEnvironment()
        try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
        let database = try Database(path: config.databasePath, maxConnections: 1)
        let migrator = Migrator(migrations: try Migration.load(from: config.migrationsDirectory))
        try database.withConnection { db in
            try PriviaDatabaseAdoption.check(db)
            if status {
                for entry in try migrator.status(db) {
                    print("\(entry.appliedAt.map { "applied \($0)" } ?? "pending")\t\(entry.name)")
                }
            } else {
                let applied = try migrator.migrate(db)
                print(applied.isEmpty ? "Database is up to date." : applied.map { "applied \($0)" }.joined(separator: "\n"))
            }
        }
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the PRIVIA_* environment (e.g. the production secret key) and print the effective settings, secrets redacted.")

    func run() throws {
        let config = try Configuration.fromEnvironment()
        let width = config.effectiveSettings.map(\.name.count).max() ?? 0
        for entry in config.effectiveSettings {
            let origin = entry.source == .default ? "  (default)" : ""
            print(entry.name.padding(toLength: width + 2, withPad: " ", startingAt: 0) + entry.printable + origin)
        }
    }
}
