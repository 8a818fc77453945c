import Foundation
import Logging
import NIOCore
import PriviaCore
import PriviaSupport
import Synchronization

/// Pushes workspace events (a conversation created, renamed, deleted; a message finished) to
/// every open socket of their user.
///
/// The pool writes rows to `workspace_events` in the shared database; this polls that table on
/// its own thread (SQLite calls block, so never on an event loop), with one indexed query
/// `WHERE id > ?` per interval, starting after the newest row that existed at start-up.
public final class WorkspaceEventPoller: Sendable {
    public let databasePath: String
    private let registry: SocketRegistry
    private let interval: TimeAmount
    private let stopped = Atomic(false)
    /// The newest row at start-up, once read; -1 until then.
    private let startedAfter = Atomic(-1)
    private let wakeUp = NSCondition()

    public init(databasePath: String, registry: SocketRegistry, interval: TimeAmount = .milliseconds(250)) {
        self.databasePath = databasePath
        self.registry = registry
        self.interval = interval
    }

    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = "privia-relay-events"
        thread.start()
    }

    /// Stops the thread at its next wake-up (at once if it is waiting).
    public func stop() {
        stopped.store(true, ordering: .releasing)
        wakeUp.lock()
        wakeUp.broadcast()
        wakeUp.unlock()
    }

    private var isStopped: Bool { stopped.load(ordering: .acquiring) }

    /// The newest row at start-up, once the thread has read it: rows after it are delivered.
    var deliversAfter: Int? {
        let id = startedAfter.load(ordering: .acquiring)
        return id < 0 ? nil : id
    }

    private func run() {
        var database: Database?
        var lastID: Int?
        var reported = ""
        func report(_ problem: String) {
            // Say it once, not four times a second.
            if problem != reported { relayLog.warning("workspace events: \(problem)") }
            reported = problem
        }
        while !isStopped {
            do {
                if database == nil {
                    if FileManager.default.fileExists(atPath: databasePath) {
                        database = try Database(path: databasePath, maxConnections: 1)
                    } else {
                        report("no database at \(databasePath) yet")
                    }
                }
                if let database {
                    if let after = lastID {
                        lastID = try deliver(from: database, after: after)
                    } else {
                        let startID = try database.read { db in
                            try db.first("SELECT COALESCE(MAX(id), 0) FROM workspace_events") { $0.int(0) }
                        } ?? 0
                        lastID = startID
                        startedAfter.store(startID, ordering: .releasing)
                        relayLog.info("workspace events: polling", metadata: ["after_id": .stringConvertible(startID)])
                    }
                    reported = ""
                }
            } catch {
                report(String(describing: error))  // e.g. the table does not exist until the pool migrates
            }
            sleep()
        }
    }

    /// Sends every row after `after` to its user's sockets; returns the last id seen.
    ///
    /// Each user's rows go in one notice: a user with many tabs open and a busy workspace got
    /// one event-loop task and one `writev` per event and socket; now it is one per socket.
    func deliver(from database: Database, after: Int) throws -> Int {
        let rows = try database.read { db in
            try db.all("SELECT id, user_id, kind, payload FROM workspace_events WHERE id > ? ORDER BY id LIMIT 1000",
                       [after]) { row in (row.int(0), row.string(1), row.string(2), row.string(3)) }
        }
        var users: [String] = []
        var frames: [String: [JSON]] = [:]
        for (_, userID, kind, payload) in rows {
            if frames[userID] == nil { users.append(userID) }
            frames[userID, default: []].append(Self.frame(kind: kind, payload: payload))
        }
        for userID in users {
            registry.broadcast(.workspaceEvents(encoding: frames[userID] ?? []), toUser: userID)
        }
        return rows.last?.0 ?? after
    }

    /// `{"type":"event","kind":kind, …payload}`; a payload that is not an object goes under `payload`.
    static func frame(kind: String, payload: String) -> JSON {
        var members: [(String, JSON)] = [("type", "event"), ("kind", .string(kind))]
        switch try? JSONParser.parse(payload) {
        case .object(let fields)?:
            members += fields.filter { $0.0 != "type" && $0.0 != "kind" }
        case let other?:
            members.append(("payload", other))
        case nil:
            break
        }
        return .object(members)
    }

    private func sleep() {
        wakeUp.lock()
        if !isStopped {
            _ = wakeUp.wait(until: Date(timeIntervalSinceNow: Double(interval.nanoseconds) / 1e9))
        }
        wakeUp.unlock()
    }
}
