import Foundation

/// The processes' turns at writing: an exclusive `flock` on a file beside the database, taken
/// before SQLite's own write lock and dropped after the commit.
///
/// SQLite cannot wake a process waiting for its write lock: the waiter sleeps and tries again
/// (`SQLiteConnection.setBusyTimeout`), so each hand-over between the pool's worker processes
/// left the lock idle for part of a sleep. The kernel wakes an `flock` waiter the moment the
/// holder lets go. Every `Database` takes turns (pool, relay, `privia` CLI), but SQLite's lock
/// still decides who writes: a tool that does not take turns (the `sqlite3` shell, a backup)
/// only makes the others wait as before, and a process that dies while holding a turn gives it
/// back as its descriptor closes.
final class WriterTurn: Sendable {
    private let descriptor: Int32

    /// Opens (creating) `<database>-writer.lock`; nil if that cannot be done, and writers then
    /// rely on SQLite's lock alone.
    init?(databasePath: String) {
        let descriptor = open(databasePath + "-writer.lock", O_RDONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return nil }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    func take<T>(_ body: () throws -> T) rethrows -> T {
        while flock(descriptor, LOCK_EX) != 0 && errno == EINTR {}
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }
}
