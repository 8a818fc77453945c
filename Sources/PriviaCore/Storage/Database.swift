import Foundation

/// The shared SQLite database of one process: a small pool of connections to one file.
///
/// Threads borrow a connection for one unit of work and give it back, so a thread that
/// waits on a model never holds a connection (and never holds a write transaction).
public final class Database: @unchecked Sendable {
    public let path: String
    private let lock = NSCondition()
    private var idle: [SQLiteConnection] = []
    private var open = 0
    private let maxConnections: Int
    private let groupCommit: GroupCommit
    /// Whether writes have room on disk; every write's outcome updates it.
    public let storage: StorageSpace

    /// `storage` measures the free space of `path`'s filesystem unless one is given.
    public init(path: String, maxConnections: Int = 16, storage: StorageSpace? = nil) throws {
        self.path = path
        self.maxConnections = max(1, maxConnections)
        self.storage = storage ?? StorageSpace(path: path)
        groupCommit = GroupCommit(databasePath: path)
        // Open one connection now so a bad path fails at start-up, not at the first request.
        idle.append(try SQLiteConnection(path: path))
        open = 1
    }

    /// Lends a connection to `body`; at most `maxConnections` are open at once.
    public func withConnection<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        let connection = try borrow()
        defer { giveBack(connection) }
        return try body(connection)
    }

    /// One read: a connection outside any explicit transaction (each statement is its own snapshot).
    public func read<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try withConnection(body)
    }

    /// One write transaction, rolled back if `body` throws. Writes asked for at the same time
    /// share one SQLite transaction (see `GroupCommit`), so `body` may run on another thread
    /// while this one waits. Do not nest: a write inside `body` uses `body`'s connection.
    @discardableResult
    public func write<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        do {
            let result = try groupCommit.write(body)
            storage.writeSucceeded()
            return result
        } catch let error as SQLiteError where error.isStorageFull {
            storage.writeFailedForSpace()
            throw error
        }
    }

    private func borrow() throws -> SQLiteConnection {
        lock.lock()
        while idle.isEmpty && open >= maxConnections { lock.wait() }
        if let connection = idle.popLast() {
            lock.unlock()
            return connection
        }
        open += 1
        lock.unlock()
        do {
            return try SQLiteConnection(path: path)
        } catch {
            lock.lock()
            open -= 1
            lock.signal()
            lock.unlock()
            throw error
        }
    }

    private func giveBack(_ connection: SQLiteConnection) {
        lock.lock()
        idle.append(connection)
        lock.signal()
        lock.unlock()
    }
}
