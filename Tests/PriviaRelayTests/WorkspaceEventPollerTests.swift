import Foundation
import NIOCore
import NIOEmbedded
import PriviaCore
import Testing
@testable import PriviaRelay

@Suite struct WorkspaceEventPollerTests {
    @Test func frameMergesThePayload() {
        #expect(WorkspaceEventPoller.frame(kind: "conversation.renamed", payload: #"{"id":"c1","title":"T","type":"x"}"#)
            == ["type": "event", "kind": "conversation.renamed", "id": "c1", "title": "T"])
        #expect(WorkspaceEventPoller.frame(kind: "k", payload: "[1]") == ["type": "event", "kind": "k", "payload": [1]])
    }

    @Test func newRowsReachEverySocketOfTheirUserOnly() throws {
        let path = NSTemporaryDirectory() + "relay-events-\(UUID().uuidString).db"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let database = try Database(path: path)
        try database.write { db in
            try db.execute("""
                CREATE TABLE workspace_events (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL,
                    kind TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT NOT NULL)
                """)
            try db.run("INSERT INTO workspace_events (user_id, kind, payload, created_at) VALUES ('u1', 'old', '{}', 'now')")
        }
        let tab1 = try ChatSocketHarness(identity: .user(id: "u1", token: "t"))
        let tab2 = try ChatSocketHarness(identity: .user(id: "u1", token: "t"))
        let other = try ChatSocketHarness(identity: .user(id: "u2", token: "t"))
        let registry = SocketRegistry()
        for socket in [tab1, tab2] { registry.add(socket.channel, userID: "u1") }
        registry.add(other.channel, userID: "u2")
        let poller = WorkspaceEventPoller(databasePath: path, registry: registry)

        try database.write { db in
            try db.run("INSERT INTO workspace_events (user_id, kind, payload, created_at) VALUES ('u1', 'conversation.created', '{\"id\":\"c7\"}', 'now')")
        }
        let last = try poller.deliver(from: database, after: 1)
        #expect(last == 2)
        for socket in [tab1, tab2, other] { socket.channel.embeddedEventLoop.run() }
        #expect(try tab1.json() == [["type": "event", "kind": "conversation.created", "id": "c7"]])
        #expect(try tab2.json() == [["type": "event", "kind": "conversation.created", "id": "c7"]])
        #expect(try other.json().isEmpty)
        #expect(try poller.deliver(from: database, after: last) == last, "nothing new")

        // Several rows in one poll, two users interleaved: each socket gets its user's, in order.
        try database.write { db in
            for (user, kind) in [("u1", "conversation.renamed"), ("u2", "conversation.created"), ("u1", "message.finished")] {
                try db.run("INSERT INTO workspace_events (user_id, kind, payload, created_at) VALUES (?, ?, '{}', 'now')", [user, kind])
            }
        }
        #expect(try poller.deliver(from: database, after: last) == 5)
        for socket in [tab1, tab2, other] { socket.channel.embeddedEventLoop.run() }
        for tab in [tab1, tab2] {
            #expect(try tab.json() == [["type": "event", "kind": "conversation.renamed"], ["type": "event", "kind": "message.finished"]])
        }
        #expect(try other.json() == [["type": "event", "kind": "conversation.created"]])
    }
}
