import Foundation
import PriviaSupport
import Testing
@testable import PriviaCore

/// Writers in different processes take turns through a lock file the kernel hands over.
@Suite struct WriterTurnTests {
    func scratchPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("writer-turn-\(newID()).db").path
    }

    /// Two turns opened separately conflict as two processes' would (flock belongs to the open
    /// file, not the process): the second runs only after the first let go, and at once then.
    @Test func aSecondWriterWaitsForTheFirstAndGoesAsSoonAsItLetsGo() throws {
        let path = scratchPath()
        let first = try #require(WriterTurn(databasePath: path))
        let second = try #require(WriterTurn(databasePath: path))
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let log = Log()
        let holder = Thread {
            first.take {
                log.append("first took")
                holding.signal()
                release.wait()
                log.append("first let go")
            }
        }
        holder.start()
        holding.wait()
        let waiter = DispatchSemaphore(value: 0)
        Thread {
            second.take { log.append("second took") }
            waiter.signal()
        }.start()
        // The second is blocked while the first holds its turn: the kernel lists it as waiting.
        let deadline = ContinuousClock.now + .seconds(5)
        while !waitsForALock(path + "-writer.lock") && ContinuousClock.now < deadline { usleep(1000) }
        #expect(waitsForALock(path + "-writer.lock"), "the second writer is not waiting for the first")
        #expect(log.entries == ["first took"])
        let released = ContinuousClock.now
        release.signal()
        #expect(waiter.wait(timeout: .now() + 5) == .success)
        #expect(ContinuousClock.now - released < .milliseconds(500))
        #expect(log.entries == ["first took", "first let go", "second took"])
    }

    /// Whether someone waits in flock(2) for the file at `path`: /proc/locks lists each blocked
    /// request under the lock that blocks it, marked "->", with the inode of the file.
    func waitsForALock(_ path: String) -> Bool {
        var file = stat()
        guard stat(path, &file) == 0, let locks = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return false }
        return locks.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            return fields.contains("->") && fields.contains { $0.hasSuffix(":\(file.st_ino)") }
        }
    }

    /// Where the lock file cannot be made, there is no turn, and writes rely on SQLite's lock.
    @Test func noTurnWhereTheLockFileCannotBeMade() {
        #expect(WriterTurn(databasePath: "/nonexistent-\(newID())/privia.db") == nil)
    }

    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [String] = []
        func append(_ entry: String) { lock.withLock { items.append(entry) } }
        var entries: [String] { lock.withLock { items } }
    }
}
