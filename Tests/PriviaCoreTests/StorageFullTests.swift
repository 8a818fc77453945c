import CSQLite
import Foundation
import PriviaSupport
import Testing
@testable import PriviaCore

/// A full disk: which SQLite failures mean it, what the database remembers of it for
/// `/api/health`, and that writes come back by themselves once there is room.
@Suite struct StorageFullTests {
    /// Free space a test sets by hand.
    final class FreeSpace: @unchecked Sendable {
        private let lock = NSLock()
        private var bytes: UInt64
        init(_ bytes: UInt64) { self.bytes = bytes }
        var value: UInt64 {
            get { lock.withLock { bytes } }
            set { lock.withLock { bytes = newValue } }
        }
    }

    func database(freeSpace: FreeSpace) throws -> Database {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("privia-full-\(newID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let database = try Database(path: directory + "/privia.db", storage: StorageSpace { freeSpace.value })
        try database.withConnection { try $0.execute("CREATE TABLE notes (body TEXT NOT NULL)") }
        return database
    }

    /// SQLite's own "database or disk is full": the writer may not grow the file past its size
    /// now (`max_page_count` clamps to it), as on a disk with no room left.
    func fillUp(_ database: Database) throws {
        try database.write { try $0.execute("PRAGMA max_page_count = 1") }
    }

    func makeRoom(_ database: Database) throws {
        try database.write { try $0.execute("PRAGMA max_page_count = 2147483646") }
    }

    let bigNote = String(repeating: "n", count: 64 * 1024)

    @Test func sqliteFailuresThatMeanNoSpaceAreStorageFull() {
        // Extended result codes are C macros Swift does not import.
        let SQLITE_IOERR_WRITE = SQLITE_IOERR | (3 << 8)
        let SQLITE_IOERR_SHMSIZE = SQLITE_IOERR | (19 << 8)
        let SQLITE_CONSTRAINT_UNIQUE = SQLITE_CONSTRAINT | (8 << 8)
        #expect(SQLiteError(code: SQLITE_FULL, message: "database or disk is full").isStorageFull)
        // An I/O error counts only when the system said ENOSPC (or the quota's EDQUOT).
        #expect(SQLiteError(code: SQLITE_IOERR_SHMSIZE, message: "disk I/O error", systemErrno: ENOSPC).isStorageFull)
        #expect(SQLiteError(code: SQLITE_IOERR_WRITE, message: "disk I/O error", systemErrno: EDQUOT).isStorageFull)
        #expect(!SQLiteError(code: SQLITE_IOERR_WRITE, message: "disk I/O error", systemErrno: EIO).isStorageFull)
        #expect(!SQLiteError(code: SQLITE_IOERR, message: "disk I/O error").isStorageFull)
        #expect(!SQLiteError(code: SQLITE_CONSTRAINT_UNIQUE, message: "UNIQUE constraint failed", systemErrno: ENOSPC).isStorageFull)
        #expect(!SQLiteError(code: SQLITE_BUSY, message: "database is locked").isStorageFull)
    }

    @Test func aWriteOnAFullDiskFailsAsStorageFullAndReadsGoOn() throws {
        let database = try database(freeSpace: FreeSpace(1 << 30))
        try database.write { try $0.run("INSERT INTO notes (body) VALUES ('kept')") }
        try fillUp(database)
        #expect { try database.write { try $0.run("INSERT INTO notes (body) VALUES (?)", [bigNote]) } }
            throws: { ($0 as? SQLiteError)?.isStorageFull == true }
        #expect(try database.read { try $0.all("SELECT body FROM notes") { $0.string(0) } } == ["kept"])
        try makeRoom(database)
        try database.write { try $0.run("INSERT INTO notes (body) VALUES (?)", [bigNote]) }
        #expect(try database.read { try $0.first("SELECT count(*) FROM notes") { $0.int(0) } } == 2)
    }

    /// The writes a batch shares fail together, each with the storage error, and the batch
    /// after them commits.
    @Test func everyWriteOfAFailedBatchSeesStorageFull() throws {
        let database = try database(freeSpace: FreeSpace(1 << 30))
        try fillUp(database)
        let group = DispatchGroup()
        let failures = Results()
        for _ in 0..<8 {
            group.enter()
            Thread {
                do { try database.write { try $0.run("INSERT INTO notes (body) VALUES (?)", [bigNote]) } } catch { failures.add(error) }
                group.leave()
            }.start()
        }
        group.wait()
        #expect(failures.all.count == 8)
        #expect(failures.all.allSatisfy { ($0 as? SQLiteError)?.isStorageFull == true })
        try makeRoom(database)
        try database.write { try $0.run("INSERT INTO notes (body) VALUES (?)", [bigNote]) }
    }

    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var errors: [Error] = []
        func add(_ error: Error) { lock.withLock { errors.append(error) } }
        var all: [Error] { lock.withLock { errors } }
    }

    @Test func storageIsLowBelowTheLowWaterMark() throws {
        let free = FreeSpace(StorageSpace.lowWaterBytes)
        let database = try database(freeSpace: free)
        #expect(!database.storage.isLow)
        free.value = StorageSpace.lowWaterBytes - 1
        #expect(database.storage.isLow)
        free.value = 0
        #expect(database.storage.isLow)
        free.value = 1 << 30
        #expect(!database.storage.isLow)
    }

    /// A write that failed for want of space makes storage low even with free space above the
    /// mark (that write needed more), until a write succeeds or the free space grows by the mark.
    @Test func aFailedWriteKeepsStorageLowUntilAWriteSucceeds() throws {
        let free = FreeSpace(100 << 20)
        let database = try database(freeSpace: free)
        try fillUp(database)
        _ = try? database.write { try $0.run("INSERT INTO notes (body) VALUES (?)", [bigNote]) }
        #expect(database.storage.isLow)
        free.value += StorageSpace.lowWaterBytes - 1
        #expect(database.storage.isLow)
        // A failure that is not about space changes nothing.
        _ = try? database.write { try $0.run("INSERT INTO missing (body) VALUES (1)") }
        #expect(database.storage.isLow)
        try makeRoom(database)
        try database.write { try $0.run("INSERT INTO notes (body) VALUES (?)", [bigNote]) }
        #expect(!database.storage.isLow)
    }

    @Test func aFailedWriteCountsNoLongerOnceSpaceIsFreed() throws {
        let free = FreeSpace(100 << 20)
        let database = try database(freeSpace: free)
        try fillUp(database)
        _ = try? database.write { try $0.run("INSERT INTO notes (body) VALUES (?)", [bigNote]) }
        #expect(database.storage.isLow)
        free.value += StorageSpace.lowWaterBytes
        #expect(!database.storage.isLow)
    }
}
