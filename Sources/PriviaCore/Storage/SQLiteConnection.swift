import CSQLite
import Foundation

/// A failure reported by SQLite, with its result code and message.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let message: String
    /// The operating system's error number behind an I/O failure (`sqlite3_system_errno`), else 0.
    public let systemErrno: Int32
    public var description: String { "SQLite error \(code): \(message)" + (systemErrno == 0 ? "" : " (errno \(systemErrno))") }

    public init(code: Int32, message: String, systemErrno: Int32 = 0) {
        self.code = code
        self.message = message
        self.systemErrno = systemErrno
    }

    /// SQLITE_CONSTRAINT and its extended codes: a unique or foreign-key rule said no.
    public var isConstraintViolation: Bool { code & 0xff == SQLITE_CONSTRAINT }
    /// SQLITE_BUSY / SQLITE_LOCKED: another writer held the database past the busy timeout.
    public var isBusy: Bool { code & 0xff == SQLITE_BUSY || code & 0xff == SQLITE_LOCKED }
    /// The disk (or the user's quota) has no room left: SQLITE_FULL, which SQLite reports when a
    /// write to the database or its WAL meets ENOSPC, or an I/O error whose cause was the same
    /// (growing the -shm file on a full disk answers SQLITE_IOERR_SHMSIZE).
    public var isStorageFull: Bool {
        code & 0xff == SQLITE_FULL || (code & 0xff == SQLITE_IOERR && (systemErrno == ENOSPC || systemErrno == EDQUOT))
    }
}

/// A value bound to a statement parameter.
public enum SQLValue: Sendable, Equatable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case null
}

/// Anything that can be bound to a statement parameter.
public protocol SQLBindable { var sqlValue: SQLValue { get } }
extension Int: SQLBindable { public var sqlValue: SQLValue { .integer(Int64(self)) } }
extension Int64: SQLBindable { public var sqlValue: SQLValue { .integer(self) } }
extension Double: SQLBindable { public var sqlValue: SQLValue { .real(self) } }
extension String: SQLBindable { public var sqlValue: SQLValue { .text(self) } }
extension Bool: SQLBindable { public var sqlValue: SQLValue { .integer(self ? 1 : 0) } }
extension Optional: SQLBindable where Wrapped: SQLBindable {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

/// SQLite's busy handler: `count` is how many times it was called for this lock. The context
/// carries the timeout in milliseconds; returning 0 gives up (SQLITE_BUSY).
private let retryWhileBusy: @convention(c) (UnsafeMutableRawPointer?, Int32) -> Int32 = { context, count in
    let timeoutMicros = Int(bitPattern: context) * 1000
    // Steps of 50, 100, 200, 400, 800 µs, then 1 ms: about 1.55 ms in the first five tries.
    let waited = count < 5 ? 50 * ((1 << Int(count)) - 1) : 1550 + (Int(count) - 5) * 1000
    guard waited < timeoutMicros else { return 0 }
    usleep(UInt32(count < 5 ? 50 << Int(count) : 1000))
    return 1
}

// SQLITE_TRANSIENT tells SQLite to copy bound text before the call returns.
private let SQLITE_TRANSIENT = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// One row of a result, read by column index while the statement is positioned on it.
public struct SQLRow {
    fileprivate let statement: OpaquePointer

    public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }
    public func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(statement, column)) }
    public func double(_ column: Int32) -> Double { sqlite3_column_double(statement, column) }
    public func string(_ column: Int32) -> String {
        guard let text = sqlite3_column_text(statement, column) else { return "" }
        let count = Int(sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }
    public func optionalString(_ column: Int32) -> String? { isNull(column) ? nil : string(column) }
    /// The column's text as SQLite holds it (not checked as UTF-8), valid only inside `body`.
    public func withText<R>(_ column: Int32, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        let text = sqlite3_column_text(statement, column)
        return try body(UnsafeBufferPointer(start: text, count: text == nil ? 0 : Int(sqlite3_column_bytes(statement, column))))
    }
    public func optionalInt(_ column: Int32) -> Int? { isNull(column) ? nil : int(column) }
    public func optionalDouble(_ column: Int32) -> Double? { isNull(column) ? nil : double(column) }
}

/// One SQLite connection with a cache of prepared statements.
///
/// A connection is used by one thread at a time (it is opened with
/// SQLITE_OPEN_NOMUTEX); `Database` hands connections out from a pool.
public final class SQLiteConnection {
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    private var transactionDepth = 0
    /// Frames in the WAL after this connection's last commit, once `checkpointsByHand()` is on.
    private(set) var walFrames = 0

    /// Opens (creating if needed) the database file and applies the per-connection pragmas
    /// every process of the stack relies on: WAL, foreign keys, busy timeout, synchronous=NORMAL.
    public init(path: String, busyTimeoutMilliseconds: Int32 = 5000) throws {
        Self.configureLibrary
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open \(path)"
            sqlite3_close_v2(handle)
            throw SQLiteError(code: rc, message: message)
        }
        setBusyTimeout(busyTimeoutMilliseconds)
        sqlite3_extended_result_codes(handle, 1)
        // journal_mode=WAL persists in the file; setting it again is cheap and covers a fresh file.
        try execute("PRAGMA journal_mode=WAL")
        try execute("PRAGMA foreign_keys=ON")
        try execute("PRAGMA synchronous=NORMAL")
        // No memory map: a connection unmaps the whole file whenever another one has committed,
        // so under a steady stream of chat turns every read paid for munmap and page faults.
        try execute("PRAGMA mmap_size=0")
        // Savepoints and sorts keep their scratch pages in memory, not in files under /var/tmp.
        try execute("PRAGMA temp_store=MEMORY")
    }

    /// Library-wide settings, applied once before the process's first connection opens.
    private static let configureLibrary: Void = {
        _ = privia_sqlite_disable_memory_statistics()
    }()

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    private func error(_ rc: Int32) -> SQLiteError {
        SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(handle)), systemErrno: systemErrno(rc))
    }

    /// The errno behind an I/O failure; SQLite keeps the last one and does not clear it for other errors.
    private func systemErrno(_ rc: Int32) -> Int32 {
        rc & 0xff == SQLITE_IOERR || rc & 0xff == SQLITE_CANTOPEN ? sqlite3_system_errno(handle) : 0
    }

    /// Runs one or more statements that return no rows (a migration script, a pragma).
    public func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? "error \(rc)"
            sqlite3_free(message)
            throw SQLiteError(code: rc, message: text, systemErrno: systemErrno(rc))
        }
    }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error(rc) }
        statements[sql] = statement
        return statement
    }

    private func bind(_ statement: OpaquePointer, _ arguments: [SQLBindable]) throws {
        for (offset, argument) in arguments.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch argument.sqlValue {
            case .integer(let value): rc = sqlite3_bind_int64(statement, index, value)
            case .real(let value): rc = sqlite3_bind_double(statement, index, value)
            case .text(let value): rc = Self.bindText(value, to: statement, at: index)
            case .null: rc = sqlite3_bind_null(statement, index)
            }
            guard rc == SQLITE_OK else { throw error(rc) }
        }
    }

    /// Binds text by its length in bytes: passed as a C string it would end at its first U+0000.
    private static func bindText(_ value: String, to statement: OpaquePointer, at index: Int32) -> Int32 {
        var text = value
        return text.withUTF8 { utf8 in
            guard let base = utf8.baseAddress, !utf8.isEmpty else { return sqlite3_bind_text(statement, index, "", 0, SQLITE_TRANSIENT) }
            return base.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                sqlite3_bind_text64(statement, index, $0, sqlite3_uint64(utf8.count), SQLITE_TRANSIENT, UInt8(SQLITE_UTF8))
            }
        }
    }

    /// Runs a statement and calls `row` for each result row.
    public func query(_ sql: String, _ arguments: [SQLBindable] = [], row: (SQLRow) throws -> Void) throws {
        let statement = try prepared(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        try bind(statement, arguments)
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else { throw error(rc) }
            try row(SQLRow(statement: statement))
        }
    }

    /// Runs a statement and maps every row.
    public func all<T>(_ sql: String, _ arguments: [SQLBindable] = [], _ map: (SQLRow) throws -> T) throws -> [T] {
        var result: [T] = []
        try query(sql, arguments) { result.append(try map($0)) }
        return result
    }

    /// Runs a statement and maps its first row, if any.
    public func first<T>(_ sql: String, _ arguments: [SQLBindable] = [], _ map: (SQLRow) throws -> T) throws -> T? {
        var result: T?
        try query(sql, arguments) { row in
            if result == nil { result = try map(row) }
        }
        return result
    }

    /// Runs a statement that returns no rows and gives the number of rows it changed.
    @discardableResult
    public func run(_ sql: String, _ arguments: [SQLBindable] = []) throws -> Int {
        try query(sql, arguments) { _ in }
        return Int(sqlite3_changes(handle))
    }

    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Waits up to `milliseconds` for another process's write lock, retrying in steps that
    /// grow from 50 µs to 1 ms. SQLite's own busy timeout sleeps 1 to 100 ms between tries,
    /// which left writers idle long after the lock was free.
    public func setBusyTimeout(_ milliseconds: Int32) {
        sqlite3_busy_handler(handle, retryWhileBusy, UnsafeMutableRawPointer(bitPattern: Int(max(1, milliseconds))))
    }

    /// Runs `body` inside one write transaction started with BEGIN IMMEDIATE, so the write
    /// lock is taken up front (a deferred upgrade fails at once with SQLITE_BUSY across processes).
    /// Nested calls join the outer transaction.
    public func write<T>(_ body: () throws -> T) throws -> T {
        if transactionDepth > 0 { return try body() }
        try execute("BEGIN IMMEDIATE")
        transactionDepth += 1
        do {
            let result = try body()
            transactionDepth -= 1
            try execute("COMMIT")
            return result
        } catch {
            transactionDepth -= 1
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Runs `body` inside a savepoint of the current transaction: if it throws, only its own
    /// changes are undone, and the error is rethrown.
    public func savepoint<T>(_ body: () throws -> T) throws -> T {
        try run("SAVEPOINT job")
        do {
            let result = try body()
            try run("RELEASE job")
            return result
        } catch {
            if isInTransaction {
                _ = try? run("ROLLBACK TO job")
                _ = try? run("RELEASE job")
            }
            throw error
        }
    }

    /// False outside a transaction, including after SQLite rolled one back on its own.
    public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// Stops this connection checkpointing inside its COMMITs (SQLite's automatic checkpoint,
    /// which keeps the committing thread for a write-back and an fsync) and keeps `walFrames`
    /// instead, so the caller checkpoints when and where it likes.
    func checkpointsByHand() throws {
        try execute("PRAGMA wal_autocheckpoint=0")
        sqlite3_wal_hook(handle, { context, _, _, frames in
            Unmanaged<SQLiteConnection>.fromOpaque(context!).takeUnretainedValue().walFrames = Int(frames)
            return SQLITE_OK
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Copies what it can of the WAL back into the database without waiting for readers or
    /// blocking writers (SQLITE_CHECKPOINT_PASSIVE), as the automatic checkpoint does.
    func checkpoint() {
        sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
    }
}

extension SQLiteConnection {
    /// True when a write lock can be had within `timeoutMilliseconds`: the database file is
    /// writable and no writer is stuck holding it. Takes the lock and writes nothing.
    public func canWrite(timeoutMilliseconds: Int32) -> Bool {
        setBusyTimeout(timeoutMilliseconds)
        defer { setBusyTimeout(5000) }
        do {
            try execute("BEGIN IMMEDIATE")
            try execute("ROLLBACK")
            return true
        } catch {
            return false
        }
    }
}
