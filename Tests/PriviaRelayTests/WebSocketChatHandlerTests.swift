import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import PriviaCore
import PriviaSupport
import Testing
@testable import PriviaRelay

/// A pool that records requests and lets the test answer them.
final class FakeTransport: PoolTransport, @unchecked Sendable {
    final class Call: PoolCall {
        let request: FastCGIRequest
        let onEvent: (FastCGIResponseEvent) -> Void
        var cancelled = false
        var stopped = false
        var reading = true
        init(request: FastCGIRequest, onEvent: @escaping (FastCGIResponseEvent) -> Void) {
            self.request = request
            self.onEvent = onEvent
        }
        func cancel() { cancelled = true }
        func stop() { stopped = true }
        func setReading(_ reading: Bool) { self.reading = reading }
        func param(_ name: String) -> String? { request.params.first { $0.0 == name }?.1 }
    }

    var calls: [Call] = []

    func start(_ request: FastCGIRequest, on eventLoop: any EventLoop,
               onEvent: @escaping (FastCGIResponseEvent) -> Void) -> any PoolCall {
        let call = Call(request: request, onEvent: onEvent)
        calls.append(call)
        return call
    }
}

/// An embedded chat socket with a fake pool.
struct ChatSocketHarness {
    let channel = EmbeddedChannel()
    let transport = FakeTransport()
    let registry = SocketRegistry()

    init(identity: SocketIdentity = .user(id: "u1", token: "tok"), pingSeconds: Int64 = 30) throws {
        JSONLineLogHandler.minimumLevel = .error  // keep test output readable
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let environment = ChatSocketEnvironment(transport: transport, registry: registry,
                                                pingInterval: .seconds(pingSeconds), closeTimeout: .seconds(5))
        try channel.pipeline.syncOperations.addHandler(
            WebSocketChatHandler(identity: identity, remoteAddress: "198.51.100.7", environment: environment))
    }

    func send(_ text: String) throws { try channel.writeInbound(clientText(text)) }

    /// Every frame written so far.
    func frames() throws -> [WebSocketFrame] {
        var frames: [WebSocketFrame] = []
        while let frame = try channel.readOutbound(as: WebSocketFrame.self) { frames.append(frame) }
        return frames
    }

    /// The text frames written so far, parsed.
    func json() throws -> [JSON] {
        try frames().filter { $0.opcode == .text }.map { try JSONParser.parse(Array($0.data.readableBytesView)) }
    }
}

func closeCode(_ frame: WebSocketFrame?) -> UInt16? {
    guard let frame, frame.opcode == .connectionClose else { return nil }
    return frame.data.getInteger(at: frame.data.readerIndex, as: UInt16.self)
}

@Suite struct WebSocketChatHandlerTests {
    @Test func rejectedTokenClosesWith1008() throws {
        let socket = try ChatSocketHarness(identity: .rejected(reason: "Invalid or expired token"))
        let frames = try socket.frames()
        #expect(frames.count == 1)
        #expect(closeCode(frames.first) == 1008)
        #expect(String(buffer: frames[0].data.getSlice(at: frames[0].data.readerIndex + 2, length: frames[0].data.readableBytes - 2)!) == "Invalid or expired token")
        try socket.send("question after close")  // ignored
        #expect(socket.transport.calls.isEmpty)
        try socket.channel.writeInbound(clientFrame(.connectionClose, [0x03, 0xF0]))
        #expect(!socket.channel.isActive, "the client's close answer ends the connection")
    }

    @Test func unavailablePoolClosesWith1011() throws {
        let socket = try ChatSocketHarness(identity: .unavailable)
        #expect(closeCode(try socket.frames().first) == 1011)
        socket.channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(!socket.channel.isActive, "no answer to our close: the connection is dropped after the timeout")
    }

    @Test func aTurnReachesThePoolAndComesBackAsFrames() throws {
        let socket = try ChatSocketHarness()
        try socket.send(#"{"question":"Hi","conversation_id":"c1"}"#)
        let call = try #require(socket.transport.calls.first)
        #expect(call.param("REQUEST_METHOD") == "POST")
        #expect(call.param("REQUEST_URI") == "/api/stream")
        #expect(call.param("HTTP_AUTHORIZATION") == "Bearer tok")
        #expect(call.param("HTTP_ACCEPT") == "text/event-stream")
        #expect(call.param("CONTENT_TYPE") == "application/json")
        #expect(call.param("REMOTE_ADDR") == "198.51.100.7")
        #expect(call.param("REQUEST_ID")?.count == 32)
        #expect(call.param("CONTENT_LENGTH") == String(call.request.body.count))
        #expect(String(decoding: call.request.body, as: UTF8.self) == #"{"question":"Hi","conversation_id":"c1"}"#)

        call.onEvent(sseHead())
        call.onEvent(body("data: Hello\n\nevent: done\ndata: {\"conversation_id\":\"c1\",\"message_id\":\"m\",\"mode\":\"stub\",\"sources\":[]}\n\n"))
        call.onEvent(.end)
        let frames = try socket.json()
        #expect(frames == [
            ["type": "token", "content": "Hello", "mode": "stream"],
            ["type": "done", "conversation_id": "c1", "message_id": "m", "mode": "stub", "sources": []],
        ])
        #expect(try socket.frames().isEmpty)
        #expect(!call.cancelled)
    }

    @Test func stopAsksThePoolToStopAndForwardsTheTurnToItsDone() throws {
        let socket = try ChatSocketHarness()
        try socket.send("long one")
        let call = try #require(socket.transport.calls.first)
        call.onEvent(sseHead())
        call.onEvent(body("data: par\n\n"))
        try socket.send("another")  // busy
        try socket.send(#"{"type":"stop"}"#)
        #expect(call.stopped && !call.cancelled, "the pool is asked to stop and its answer is still read")
        try socket.send("during the stop")  // still busy: the turn has not ended
        call.onEvent(body("data: tial\n\nevent: done\ndata: {\"conversation_id\":\"c1\",\"message_id\":\"m1\",\"status\":\"stopped\",\"stopped\":true}\n\n"))
        call.onEvent(.end)
        #expect(try socket.json() == [
            ["type": "token", "content": "par", "mode": "stream"],
            ["type": "error", "content": "A response is already being generated"],
            ["type": "error", "content": "A response is already being generated"],
            ["type": "token", "content": "tial", "mode": "stream"],
            ["type": "done", "conversation_id": "c1", "message_id": "m1", "status": "stopped", "stopped": true],
        ])
        socket.channel.embeddedEventLoop.advanceTime(by: .seconds(20))  // past the bound, before a ping
        #expect(try socket.frames().isEmpty, "the stop's bound ended with the turn")
        #expect(!call.cancelled)
        try socket.send("next")
        #expect(socket.transport.calls.count == 2)
    }

    @Test func aStopThePoolNeverAnswersEndsWithDoneAfterTheBound() throws {
        let socket = try ChatSocketHarness()
        try socket.send("long one")
        let call = try #require(socket.transport.calls.first)
        call.onEvent(sseHead())
        try socket.send(#"{"type":"stop"}"#)
        try socket.send(#"{"type":"stop"}"#)  // a second stop changes nothing
        socket.channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(try socket.frames().isEmpty && !call.cancelled)
        socket.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try socket.json() == [["type": "done", "status": "stopped", "stopped": true]])
        #expect(call.cancelled, "the connection is closed: the pool stops as for a client that left")
        call.onEvent(body("data: late\n\n"))
        #expect(try socket.frames().isEmpty)
        try socket.send("next")
        #expect(socket.transport.calls.count == 2)
    }

    @Test func closingTheSocketMidTurnClosesTheUpstream() throws {
        let socket = try ChatSocketHarness()
        try socket.send("q")
        let call = try #require(socket.transport.calls.first)
        try socket.channel.writeInbound(clientFrame(.connectionClose, [0x03, 0xE8]))
        #expect(call.cancelled)
        #expect(closeCode(try socket.frames().last) == 1000, "the close is echoed")
        #expect(!socket.channel.isActive)
        #expect(socket.registry.count == 0)
    }

    @Test func pingIsAnsweredWithPong() throws {
        let socket = try ChatSocketHarness()
        try socket.channel.writeInbound(clientFrame(.ping, Array("hb".utf8)))
        let pong = try #require(try socket.frames().first)
        #expect(pong.opcode == .pong)
        #expect(String(buffer: pong.data) == "hb")
    }

    @Test func serverPingsAndDropsASocketThatMissedTwoPongs() throws {
        let socket = try ChatSocketHarness(pingSeconds: 30)
        let loop = socket.channel.embeddedEventLoop
        loop.advanceTime(by: .seconds(30))
        #expect(try socket.frames().map(\.opcode) == [.ping])
        try socket.channel.writeInbound(clientFrame(.pong, []))
        loop.advanceTime(by: .seconds(30))
        loop.advanceTime(by: .seconds(30))
        #expect(try socket.frames().map(\.opcode) == [.ping, .ping])
        #expect(socket.channel.isActive)
        loop.advanceTime(by: .seconds(30))
        #expect(!socket.channel.isActive, "two pings unanswered")
    }

    @Test func binaryIsRefusedWith1003AndBadUTF8With1007() throws {
        let socket = try ChatSocketHarness()
        try socket.channel.writeInbound(clientFrame(.binary, [1, 2]))
        #expect(closeCode(try socket.frames().first) == 1003)
        let other = try ChatSocketHarness()
        try other.channel.writeInbound(clientFrame(.text, [0xFF]))
        #expect(closeCode(try other.frames().first) == 1007)
    }

    @Test func workspaceEventsAndShutdownNotices() throws {
        let socket = try ChatSocketHarness()
        #expect(socket.registry.channels(ofUser: "u1").count == 1)
        socket.registry.broadcast(.workspaceEvents(encoding: [["type": "event", "kind": "conversation.created", "id": "c9"]]), toUser: "u1")
        socket.registry.broadcast(.workspaceEvents(encoding: [["type": "event", "kind": "x"]]), toUser: "someone-else")
        socket.channel.embeddedEventLoop.run()
        #expect(try socket.json() == [["type": "event", "kind": "conversation.created", "id": "c9"]])
        try socket.send("q")
        socket.registry.broadcast(.goingAway)
        socket.channel.embeddedEventLoop.run()
        #expect(closeCode(try socket.frames().last) == 1001)
        #expect(socket.transport.calls.first?.cancelled == true, "a turn in flight stops on shutdown")
    }
}
