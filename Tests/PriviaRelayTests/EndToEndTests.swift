import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOWebSocket
import PriviaCore
import PriviaSupport
import Testing
@testable import PriviaRelay

/// The relay on a temporary unix socket, in front of a fake pool speaking real FastCGI.
struct RelayUnderTest {
    let directory: String
    let group: MultiThreadedEventLoopGroup
    let pool: FakePool
    let server: RelayServer

    var socketPath: String { directory + "/run/privia-relay.sock" }

    static func start(pingInterval: TimeAmount = .seconds(30)) async throws -> RelayUnderTest {
        JSONLineLogHandler.minimumLevel = .error
        // sun_path holds 108 bytes: keep the temporary directory short.
        let directory = "/tmp/prt-" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
        try FileManager.default.createDirectory(atPath: directory + "/run", withIntermediateDirectories: true)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let pool = try await FakePool.start(at: directory + "/run/privia-fcgi.sock", group: group)
        var configuration = RelayConfiguration(dataDirectory: directory, unixSocketPath: directory + "/run/privia-relay.sock",
                                               pingInterval: pingInterval, eventsEnabled: false)
        configuration.poolSocketPath = pool.socketPath
        let server = RelayServer(configuration: configuration, group: group)
        try await server.start()
        return RelayUnderTest(directory: directory, group: group, pool: pool, server: server)
    }

    func connect(_ uri: String = "/api/ws/chat?token=good-token", headers: [(String, String)] = []) async throws -> TestWebSocketClient {
        try await TestWebSocketClient.connect(unixSocket: socketPath, uri: uri, headers: headers, group: group)
    }

    func stop() async {
        await server.shutdown(grace: .seconds(2))
        await pool.stop()
        try? await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

func json(_ text: String?) throws -> JSON {
    try JSONParser.parse(try #require(text))
}

/// Polls `condition` for up to two seconds (the fake pool notices closes on its own loop).
func eventually(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<200 {
        if condition() { return true }
        try? await Task.sleep(nanoseconds: 10_000_000)
    }
    return condition()
}

@Suite(.serialized) struct EndToEndTests {
    @Test func badTokenIsAcceptedThenClosedWith1008() async throws {
        let relay = try await RelayUnderTest.start()
        let client = try await relay.connect("/api/ws/chat?token=bad-token")
        let frame = try #require(try await client.next())
        #expect(closeCode(frame) == 1008)
        #expect(relay.pool.requests.first?.params["REQUEST_URI"] == "/api/auth/me")
        #expect(relay.pool.requests.first?.params["HTTP_AUTHORIZATION"] == "Bearer bad-token")
        let anonymous = try await relay.connect("/api/ws/chat")
        #expect(closeCode(try await anonymous.next()) == 1008)
        #expect(relay.pool.requests.count == 1, "no token: the pool is not even asked")
        await client.close()
        await anonymous.close()
        await relay.stop()
    }

    @Test func aStreamedTurn() async throws {
        let relay = try await RelayUnderTest.start()
        let client = try await relay.connect("/api/ws/chat", headers: [("Cookie", "theme=dark; auth-token=good-token"),
                                                                       ("X-Real-IP", "203.0.113.5")])
        try await client.send(text: #"{"question":"hello","conversation_id":"conv-1","model":"m"}"#)
        #expect(try json(await client.nextText()) == ["type": "token", "content": "Hel", "mode": "stream"])
        #expect(try json(await client.nextText()) == ["type": "token", "content": "lo\nworld", "mode": "stream"])
        #expect(try json(await client.nextText()) == ["type": "sources", "sources": ["doc-1"]])
        #expect(try json(await client.nextText()) == [
            "type": "done", "conversation_id": "conv-1", "message_id": "msg-1", "mode": "stub", "sources": ["doc-1"],
        ])
        let turn = try #require(relay.pool.requests.last)
        #expect(turn.params["REQUEST_METHOD"] == "POST" && turn.params["REQUEST_URI"] == "/api/stream")
        #expect(turn.params["REMOTE_ADDR"] == "203.0.113.5")
        #expect(turn.params["HTTP_ACCEPT"] == "text/event-stream")
        #expect(turn.body == #"{"question":"hello","conversation_id":"conv-1","model":"m"}"#)

        try await client.send(text: #"{"question":"missing","conversation_id":"nope"}"#)
        #expect(try json(await client.nextText()) == ["type": "error", "content": "Conversation not found", "code": "NOT_FOUND"])
        try await client.send(text: "   ")
        #expect(try json(await client.nextText()) == ["type": "error", "content": "Question is required"])
        await client.close()
        await relay.stop()
    }

    @Test func stopAsksThePoolToStopAndEndsWithItsDone() async throws {
        let relay = try await RelayUnderTest.start()
        let client = try await relay.connect()
        try await client.send(text: "hang")
        #expect(try json(await client.nextText()) == ["type": "token", "content": "first", "mode": "stream"])
        try await client.send(text: "second question")
        #expect(try json(await client.nextText()) == ["type": "error", "content": "A response is already being generated"])
        try await client.send(text: #"{"type":"stop"}"#)
        #expect(try json(await client.nextText()) == [
            "type": "done", "conversation_id": "conv-1", "message_id": "msg-2", "status": "stopped", "stopped": true,
        ], "the pool's own done comes through")
        #expect(relay.pool.stopsAnswered == 1)
        #expect(relay.pool.closedEarly == 0, "a stop only shuts the relay's writing side")
        try await client.send(text: "hello")
        #expect(try json(await client.nextText())["type"] == "token", "a new turn runs after the stop")

        try await client.send(text: "hang")
        _ = try await client.nextText()  // the new turn's first token; then the browser goes away
        await client.close()
        #expect(await eventually { relay.pool.closedEarly == 1 }, "closing the socket mid-turn closes the upstream")
        #expect(relay.pool.stopsAnswered == 1)
        await relay.stop()
    }

    @Test func pingIsAnsweredAndOtherPathsAre404() async throws {
        let relay = try await RelayUnderTest.start()
        let client = try await relay.connect()
        try await client.send(.ping, Array("are you there".utf8))
        let pong = try #require(try await client.next())
        #expect(pong.opcode == .pong)
        #expect(String(buffer: pong.data) == "are you there")
        await #expect(throws: TestWebSocketClient.Failure.upgradeRefused(.notFound)) {
            _ = try await relay.connect("/api/ws/elsewhere?token=good-token")
        }
        await client.close()
        await relay.stop()
    }

    @Test func serverPingsAnIdleSocket() async throws {
        let relay = try await RelayUnderTest.start(pingInterval: .milliseconds(50))
        let client = try await relay.connect()
        let ping = try #require(try await client.next(timeout: .seconds(3)))
        #expect(ping.opcode == .ping)
        await client.close()
        await relay.stop()
    }

    @Test func oversizedFrameIsClosedWith1009() async throws {
        let relay = try await RelayUnderTest.start()
        let client = try await relay.connect()
        try await client.send(text: String(repeating: "x", count: 64 * 1024 + 1))
        var frame = try await client.next()
        while let f = frame, f.opcode != .connectionClose { frame = try await client.next() }
        #expect(closeCode(frame) == 1009)
        await client.close()
        await relay.stop()
    }

    @Test func shutdownClosesSocketsWith1001() async throws {
        let relay = try await RelayUnderTest.start()
        let client = try await relay.connect()
        try await client.send(text: "hang")
        _ = try await client.nextText()
        async let stopped: Void = relay.server.shutdown(grace: .seconds(2))
        let frame = try await client.next()
        #expect(closeCode(frame) == 1001)
        await client.close()
        await stopped
        #expect(await eventually { relay.pool.closedEarly == 1 })
        #expect(!FileManager.default.fileExists(atPath: relay.socketPath))
        await relay.stop()
    }

    @Test func workspaceEventsReachTheUsersSockets() async throws {
        let relay = try await RelayUnderTest.start()
        let database = try Database(path: relay.directory + "/privia.db")
        try database.write { db in
            try db.execute("""
                CREATE TABLE workspace_events (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL,
                    kind TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT NOT NULL)
                """)
            try db.run("INSERT INTO workspace_events (user_id, kind, payload, created_at) VALUES ('user-1', 'before', '{}', 'now')")
        }
        let poller = WorkspaceEventPoller(databasePath: relay.directory + "/privia.db", registry: relay.server.registry,
                                          interval: .milliseconds(20))
        poller.start()
        let client = try await relay.connect()
        #expect(await eventually { poller.deliversAfter == 1 })
        try database.write { db in
            try db.run("""
                INSERT INTO workspace_events (user_id, kind, payload, created_at)
                VALUES ('user-2', 'not-mine', '{}', 'now'), ('user-1', 'conversation.deleted', '{"id":"c3"}', 'now')
                """)
        }
        #expect(try json(await client.nextText()) == ["type": "event", "kind": "conversation.deleted", "id": "c3"],
                "only rows written after start-up, and only this user's")
        poller.stop()
        await client.close()
        await relay.stop()
    }
}
