import Foundation
import Testing
@testable import PriviaCore

/// At most `limit` threads work at once; a thread that waits gives its place up and comes
/// back ahead of new requests; threads without a place are not limited.
@Suite struct ActiveThreadsTests {
    /// Runs `body` on a thread of its own (GCD adds threads slowly when its workers block).
    func spawn(_ group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
        group.enter()
        Thread { body(); group.leave() }.start()
    }

    /// Appends under a lock, for threads reporting what they did in order.
    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private var entries: [String] = []
        func add(_ entry: String) { lock.withLock { entries.append(entry) } }
        var all: [String] { lock.withLock { entries } }
    }

    /// Polls until `condition` holds (threads reaching a wait), failing after two seconds.
    func waitUntil(_ condition: () -> Bool) {
        let deadline = Date().addingTimeInterval(2)
        while !condition() && Date() < deadline { usleep(1000) }
        #expect(condition())
    }

    @Test func noMoreThreadsWorkAtOnceThanTheLimit() {
        let limiter = ActiveThreads(limit: 2)
        let counts = Log()
        let counter = NSLock()
        nonisolated(unsafe) var working = 0
        let group = DispatchGroup()
        for _ in 0..<8 {
            spawn(group) {
                limiter.begin()
                counts.add(String(counter.withLock { working += 1; return working }))
                usleep(2000)
                counter.withLock { working -= 1 }
                limiter.end()
            }
        }
        group.wait()
        #expect(counts.all.count == 8)
        #expect(counts.all.allSatisfy { $0 == "1" || $0 == "2" })
        #expect(limiter.workingNow == 0)
    }

    @Test func aThreadThatStepsAsideLetsANewRequestInAndComesBackFirst() {
        let limiter = ActiveThreads(limit: 1)
        let log = Log()
        let waiting = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        // A holds the only place, then waits on `waiting` with the place set aside.
        spawn(group) {
            limiter.begin()
            ActiveThreads.stepAside {
                log.add("A waits")
                waiting.wait()
            }
            log.add("A back")
            limiter.end()
        }
        waitUntil { log.all == ["A waits"] }
        // B gets the place A set aside and keeps it while A's wait ends and C asks for one.
        let holdB = DispatchSemaphore(value: 0)
        spawn(group) {
            limiter.begin()
            log.add("B in")
            holdB.wait()
            log.add("B out")
            limiter.end()
        }
        waitUntil { log.all.contains("B in") }
        spawn(group) {
            limiter.begin()
            log.add("C in")
            limiter.end()
        }
        waitUntil { limiter.waitingNow == (returning: 0, starting: 1) }
        // A's wait ends while B holds the only place: A waits for one too, in the line ahead of C's.
        waiting.signal()
        waitUntil { limiter.waitingNow == (returning: 1, starting: 1) }
        #expect(log.all == ["A waits", "B in"])
        holdB.signal()
        group.wait()
        // A, coming back from its wait, goes before C's new request.
        #expect(log.all == ["A waits", "B in", "B out", "A back", "C in"])
        #expect(limiter.workingNow == 0)
    }

    @Test func aThreadThatLeavesNoLongerCounts() {
        let limiter = ActiveThreads(limit: 1)
        let log = Log()
        let streaming = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        spawn(group) {
            limiter.begin()
            ActiveThreads.leave()
            log.add("stream holds on")
            streaming.wait()
            // Without a place, stepping aside is only the wait itself.
            ActiveThreads.stepAside { log.add("stream ends") }
            limiter.end()
        }
        waitUntil { log.all == ["stream holds on"] }
        spawn(group) {
            limiter.begin()
            log.add("request served")
            limiter.end()
        }
        waitUntil { log.all.contains("request served") }
        streaming.signal()
        group.wait()
        #expect(log.all == ["stream holds on", "request served", "stream ends"])
        #expect(limiter.workingNow == 0)
    }

    /// A thread without a place (a turn that left for its stream, or one that never began: the
    /// relay's, the CLI's) neither waits for one nor gives one back, even while every place is held.
    @Test func aThreadWithoutAPlaceNeitherWaitsNorFreesOne() {
        let limiter = ActiveThreads(limit: 1)
        let log = Log()
        let left = DispatchSemaphore(value: 0)
        let goOn = DispatchSemaphore(value: 0)
        let holdR = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        spawn(group) {
            limiter.begin()
            ActiveThreads.leave()
            left.signal()
            goOn.wait()
            ActiveThreads.stepAside { log.add("stream steps aside") }
            ActiveThreads.leave()
            limiter.end()
            log.add("stream ends")
        }
        left.wait()
        // R takes the place the stream left and holds it.
        spawn(group) {
            limiter.begin()
            log.add("R in")
            holdR.wait()
            limiter.end()
        }
        waitUntil { log.all == ["R in"] }
        goOn.signal()
        waitUntil { log.all == ["R in", "stream steps aside", "stream ends"] }
        #expect(limiter.workingNow == 1, "R's place is still taken")
        // This test's own thread never began.
        #expect(ActiveThreads.current == nil)
        #expect(ActiveThreads.stepAside { true })
        ActiveThreads.leave()
        limiter.end()
        #expect(limiter.workingNow == 1)
        holdR.signal()
        group.wait()
        #expect(limiter.workingNow == 0)
    }

    @Test func aWriteWaitingForItsBatchGivesItsPlaceToAnotherRequest() throws {
        let limiter = ActiveThreads(limit: 2)
        let (commit, reader) = try GroupCommitTests().scratch()
        let log = Log()
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        // A holds one place and keeps a batch open.
        spawn(group) {
            limiter.begin()
            _ = try! commit.write { db in
                entered.signal()
                release.wait()
                try db.run("INSERT INTO notes (text) VALUES ('a')")
            }
            limiter.end()
        }
        entered.wait()
        // B holds the other place and queues its write behind A's batch.
        spawn(group) {
            limiter.begin()
            _ = try! commit.write { db in try db.run("INSERT INTO notes (text) VALUES ('b')") }
            log.add("B written")
            limiter.end()
        }
        waitUntil { commit.queuedJobs == 1 }
        // C gets in only if B gave its place up while it waits.
        spawn(group) {
            limiter.begin()
            log.add("C in")
            limiter.end()
        }
        waitUntil { log.all == ["C in"] }
        release.signal()
        group.wait()
        #expect(log.all == ["C in", "B written"])
        #expect(try reader.all("SELECT text FROM notes ORDER BY text") { $0.string(0) } == ["a", "b"])
        #expect(limiter.workingNow == 0)
    }

    @Test func manyWritersWithFewPlacesAllCommit() throws {
        let limiter = ActiveThreads(limit: 2)
        let (commit, reader) = try GroupCommitTests().scratch()
        let group = DispatchGroup()
        for index in 0..<32 {
            spawn(group) {
                limiter.begin()
                for round in 0..<5 {
                    _ = try! commit.write { db in try db.run("INSERT INTO notes (text) VALUES (?)", ["\(index).\(round)"]) }
                }
                limiter.end()
            }
        }
        group.wait()
        #expect(try reader.first("SELECT count(*) FROM notes", [], { $0.int(0) }) == 160)
        #expect(limiter.workingNow == 0)
    }
}
