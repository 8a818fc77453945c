import Foundation
import PriviaSupport
import Testing
@testable import PriviaCore

/// Writes asked for while a batch runs are committed together; each keeps its own outcome.
@Suite struct GroupCommitTests {
    struct Refused: Error {}

    /// A group commit on a fresh file with one table, and a second connection to read it back.
    func scratch() throws -> (GroupCommit, SQLiteConnection) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("group-commit-\(newID()).db").path
        let reader = try SQLiteConnection(path: path)
        try reader.execute("CREATE TABLE notes (text TEXT NOT NULL UNIQUE)")
        return (GroupCommit(databasePath: path), reader)
    }

    func notes(_ reader: SQLiteConnection) throws -> [String] {
        try reader.all("SELECT text FROM notes ORDER BY text") { $0.string(0) }
    }

    /// Starts a write that holds the batch open until `release` is signalled, then queues
    /// `jobs` behind it one at a time, so they run as one batch in this order.
    func lineUp(_ commit: GroupCommit, jobs: [@Sendable (SQLiteConnection) throws -> Void]) -> [Result<Any, Error>] {
        let release = DispatchSemaphore(value: 0)
        let entered = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        let results = Results(count: jobs.count)
        // Threads of their own: GCD adds threads slowly when its workers block, as these do.
        func spawn(_ body: @escaping @Sendable () -> Void) {
            group.enter()
            Thread { body(); group.leave() }.start()
        }
        spawn {
            _ = try? commit.write { db in
                entered.signal()
                release.wait()
                try db.run("INSERT INTO notes (text) VALUES ('first')")
            }
        }
        entered.wait()
        for (index, job) in jobs.enumerated() {
            spawn {
                results.set(index, Result { try commit.write(job) })
            }
            while commit.queuedJobs < index + 1 { usleep(1000) }
        }
        release.signal()
        group.wait()
        return results.all
    }

    @Test func concurrentWritersAllCommit() throws {
        let (commit, reader) = try scratch()
        DispatchQueue.concurrentPerform(iterations: 200) { index in
            _ = try! commit.write { db in try db.run("INSERT INTO notes (text) VALUES (?)", ["note \(index)"]) }
        }
        #expect(try reader.first("SELECT count(*) FROM notes", [], { $0.int(0) }) == 200)
    }

    @Test func aFailingJobLosesOnlyItsOwnWrites() throws {
        let (commit, reader) = try scratch()
        let results = lineUp(commit, jobs: [
            { db in try db.run("INSERT INTO notes (text) VALUES ('kept 1')") },
            { db in
                try db.run("INSERT INTO notes (text) VALUES ('undone')")
                throw Refused()
            },
            // A constraint failure inside SQLite is undone the same way.
            { db in try db.run("INSERT INTO notes (text) VALUES ('first')") },
            { db in try db.run("INSERT INTO notes (text) VALUES ('kept 2')") },
        ])
        #expect(try notes(reader) == ["first", "kept 1", "kept 2"])
        #expect((try? results[0].get()) != nil)
        #expect(throws: Refused.self) { try results[1].get() }
        #expect { try results[2].get() } throws: { ($0 as? SQLiteError)?.isConstraintViolation == true }
        #expect((try? results[3].get()) != nil)
    }

    @Test func laterJobsInABatchSeeEarlierOnes() throws {
        let (commit, _) = try scratch()
        let seen = Results(count: 1)
        _ = lineUp(commit, jobs: [
            { db in try db.run("INSERT INTO notes (text) VALUES ('a')") },
            { db in seen.set(0, .success(try db.first("SELECT count(*) FROM notes", [], { $0.int(0) }))) },
        ])
        #expect(try seen.all[0].get() as? Int == 2)
    }

    @Test func aTransactionThatFailsFailsTheWholeBatch() throws {
        let (commit, reader) = try scratch()
        let results = lineUp(commit, jobs: [
            { db in try db.run("INSERT INTO notes (text) VALUES ('lost with the batch')") },
            // What SQLite does on a full disk or an I/O error: the whole transaction is rolled back.
            { db in
                try db.execute("ROLLBACK")
                throw Refused()
            },
            { db in try db.run("INSERT INTO notes (text) VALUES ('never run')") },
        ])
        #expect(try notes(reader) == ["first"])  // the write that held the batch open ran alone before it
        #expect(results.allSatisfy { (try? $0.get()) == nil })
        // The next write starts a fresh transaction.
        _ = try commit.write { db in try db.run("INSERT INTO notes (text) VALUES ('after')") }
        #expect(try notes(reader) == ["after", "first"])
    }

    /// The writer does not checkpoint inside its commits, but the group commit copies the WAL
    /// back into the database once it passes 1,000 frames: the database file grows as the WAL
    /// is written back, and the WAL starts over instead of growing without end.
    @Test func theWALIsCopiedBackOnceItPassesAThousandFrames() throws {
        let (commit, reader) = try scratch()
        let path = try #require(try reader.first("PRAGMA database_list", [], { $0.string(2) }))
        func bytes(_ file: String) throws -> Int {
            try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int ?? 0
        }
        let before = try bytes(path)
        let page = String(repeating: "x", count: 3000)  // about one page a row
        for i in 0..<1500 {
            _ = try commit.write { db in try db.run("INSERT INTO notes (text) VALUES (?)", ["\(i) \(page)"]) }
        }
        #expect(try bytes(path) > before + 1000 * 3000)
        // Without checkpoints the WAL would hold all 1,500 pages and more (each commit also
        // rewrites the table's and index's interior pages).
        #expect(try bytes(path + "-wal") < 1200 * 4120)
        #expect(try reader.first("SELECT count(*) FROM notes", [], { $0.int(0) }) == 1500)
    }
}

/// Results filled in from several threads.
final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Result<Any, Error>]
    init(count: Int) { values = Array(repeating: .failure(CancellationError()), count: count) }
    func set<T>(_ index: Int, _ result: Result<T, Error>) {
        lock.lock()
        values[index] = result.map { $0 as Any }
        lock.unlock()
    }
    var all: [Result<Any, Error>] {
        lock.lock()
        defer { lock.unlock() }
        return values
    }
}
