import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PriviaCore
import PriviaSupport
@testable import PriviaRelay

/// A tiny FastCGI responder on a unix socket that speaks real FastCGI records, standing in
/// for the pool: `GET /api/auth/me` knows the token "good-token"; `POST /api/stream` answers
/// by question ("hello" streams a canned SSE answer, "hang" streams one token and waits until
/// its client stops, then ends with a stopped `done`; "missing" is a 404).
final class FakePool: Sendable {
    struct Request: Sendable {
        var params: [String: String]
        var body: String
    }

    let socketPath: String
    private let channel: any Channel
    private let state: NIOLockedValueBox<State>

    struct State {
        var requests: [Request] = []
        var closedEarly = 0
        var stopsAnswered = 0
    }

    private init(socketPath: String, channel: any Channel, state: NIOLockedValueBox<State>) {
        self.socketPath = socketPath
        self.channel = channel
        self.state = state
    }

    static func start(at socketPath: String, group: any EventLoopGroup) async throws -> FakePool {
        let state = NIOLockedValueBox(State())
        let channel = try await ServerBootstrap(group: group)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FastCGIRecordDecoder()))
                    try channel.pipeline.syncOperations.addHandler(FakePoolConnection(state: state))
                }
            }
            .bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true).get()
        return FakePool(socketPath: socketPath, channel: channel, state: state)
    }

    var requests: [Request] { state.withLockedValue { $0.requests } }
    /// Connections the client closed before the response was complete (a client that left).
    var closedEarly: Int { state.withLockedValue { $0.closedEarly } }
    /// Turns the client stopped by shutting down its writing side, answered with a stopped `done`.
    var stopsAnswered: Int { state.withLockedValue { $0.stopsAnswered } }

    func stop() async { try? await channel.close() }
}

/// One FastCGI connection of the fake pool.
private final class FakePoolConnection: ChannelInboundHandler {
    typealias InboundIn = FastCGIRecord
    typealias OutboundOut = ByteBuffer

    private let state: NIOLockedValueBox<FakePool.State>
    private var params = ByteBuffer()
    private var stdin = ByteBuffer()
    private var paramsDone = false
    private var hanging = false
    private var finished = false

    init(state: NIOLockedValueBox<FakePool.State>) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var record = Self.unwrapInboundIn(data)
        switch record.kind {
        case .params where record.content.readableBytes == 0: paramsDone = true
        case .params: params.writeBuffer(&record.content)
        case .stdin where record.content.readableBytes == 0 && paramsDone: respond(context: context)
        case .stdin: stdin.writeBuffer(&record.content)
        default: break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !finished { state.withLockedValue { $0.closedEarly += 1 } }
    }

    /// The client shut down its writing side (a full close looks the same until a write fails):
    /// a hanging turn ends as the pool ends a stopped one.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .inputClosed? = event as? ChannelEvent else { return }
        guard hanging else { return context.close(promise: nil) }
        hanging = false
        finish(context, "event: done\ndata: {\"conversation_id\": \"conv-1\", \"message_id\": \"msg-2\", \"status\": \"stopped\", \"stopped\": true}\n\n", "") {
            $0.stopsAnswered += 1
        }
    }

    private func respond(context: ChannelHandlerContext) {
        let pairs = (try? FastCGIParams.decode(params)) ?? []
        let request = FakePool.Request(params: Dictionary(pairs, uniquingKeysWith: { a, _ in a }), body: String(buffer: stdin))
        state.withLockedValue { $0.requests.append(request) }
        let authorized = request.params["HTTP_AUTHORIZATION"] == "Bearer good-token"

        switch request.params["REQUEST_URI"] {
        case "/api/auth/me":
            if authorized {
                finish(context, "Status: 200 OK\r\nContent-Type: application/json\r\n\r\n", #"{"id":"user-1","email":"a@b.c","full_name":null,"role":"member"}"#)
            } else {
                finish(context, "Status: 401 Unauthorized\r\nContent-Type: application/json\r\n\r\n", #"{"detail":"Invalid or expired token","code":"AUTH"}"#)
            }
        case "/api/stream":
            let question = (try? JSONParser.parse(request.body))?["question"]?.stringValue ?? ""
            switch question {
            case "hang":
                hanging = true
                write(context, "Status: 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: first\n\n")
            case "missing":
                finish(context, "Status: 404 Not Found\r\nContent-Type: application/json\r\n\r\n", #"{"detail":"Conversation not found","code":"NOT_FOUND"}"#)
            default:
                // Cut into records at awkward places, as a flushing writer would.
                let stream = "Status: 200 OK\r\nContent-Type: text/event-stream\r\nX-Accel-Buffering: no\r\n\r\n"
                    + ": ping\n\ndata: Hel\n\ndata: lo\ndata: world\n\nevent: sources\ndata: [\"doc-1\"]\n\n"
                    + "event: done\ndata: {\"conversation_id\": \"conv-1\", \"message_id\": \"msg-1\", \"mode\": \"stub\", \"sources\": [\"doc-1\"]}\n\n"
                let bytes = Array(stream.utf8)
                var start = 0
                for size in [10, 1, 60, 3, 17] where start < bytes.count {
                    let end = min(bytes.count, start + size)
                    write(context, String(decoding: bytes[start..<end], as: UTF8.self))
                    start = end
                }
                finish(context, String(decoding: bytes[start...], as: UTF8.self), "")
            }
        default:
            finish(context, "Status: 404 Not Found\r\n\r\n", "")
        }
    }

    private func write(_ context: ChannelHandlerContext, _ text: String) {
        var out = ByteBuffer()
        FastCGIRecord(kind: .stdout, content: ByteBuffer(string: text)).write(to: &out)
        context.writeAndFlush(Self.wrapOutboundOut(out), promise: nil)
    }

    /// Writes the rest of the response and closes; `delivered` runs once it was written.
    private func finish(_ context: ChannelHandlerContext, _ head: String, _ body: String,
                        delivered: @escaping (inout FakePool.State) -> Void = { _ in }) {
        write(context, head + body)
        var out = ByteBuffer()
        FastCGIRecord(kind: .stdout).write(to: &out)
        FastCGIRecord(kind: .endRequest, content: FastCGIEndRequest().content).write(to: &out)
        let loopContext = context
        context.writeAndFlush(Self.wrapOutboundOut(out)).assumeIsolated().whenComplete { [self] result in
            if case .success = result {
                finished = true
                state.withLockedValue(delivered)
            }
            loopContext.close(promise: nil)
        }
    }
}
