import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
@testable import PriviaRelay

/// A minimal WebSocket client over a unix socket (NIO's client upgrader), for end-to-end tests.
final class TestWebSocketClient: Sendable {
    enum Failure: Error, Equatable { case upgradeRefused(HTTPResponseStatus), timedOut, closed }

    let channel: any Channel
    private let inbox: NIOLockedValueBox<(frames: [WebSocketFrame], waiters: [CheckedContinuation<WebSocketFrame?, Never>])>

    private init(channel: any Channel, inbox: NIOLockedValueBox<(frames: [WebSocketFrame], waiters: [CheckedContinuation<WebSocketFrame?, Never>])>) {
        self.channel = channel
        self.inbox = inbox
    }

    static func connect(unixSocket path: String, uri: String, headers: [(String, String)] = [],
                        group: any EventLoopGroup) async throws -> TestWebSocketClient {
        let inbox = NIOLockedValueBox<(frames: [WebSocketFrame], waiters: [CheckedContinuation<WebSocketFrame?, Never>])>(([], []))
        let loop = group.next()
        let upgraded = loop.makePromise(of: Void.self)
        let channel = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOWebSocketClientUpgrader(
                        requestKey: "dGhlIHNhbXBsZSBub25jZQ==", maxFrameSize: 1 << 20, automaticErrorHandling: false,
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(FrameInbox(inbox: inbox))
                            }
                        })
                    // Forward bytes that arrive with the 101 (a close frame may follow it at once).
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes, withClientUpgrade: (
                        upgraders: [upgrader],
                        completionHandler: { context in
                            context.pipeline.syncOperations.removeHandler(name: "upgrade-writer", promise: nil)
                            upgraded.succeed()
                        }))
                    try channel.pipeline.syncOperations.addHandler(
                        UpgradeRequestWriter(uri: uri, headers: headers, upgraded: upgraded), name: "upgrade-writer")
                }
            }
            .connect(unixDomainSocketPath: path).get()
        try await upgraded.futureResult.get()
        return TestWebSocketClient(channel: channel, inbox: inbox)
    }

    func send(_ opcode: WebSocketOpcode, _ bytes: [UInt8]) async throws {
        let frame = WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: ByteBuffer(bytes: bytes))
        try await channel.writeAndFlush(frame)
    }

    func send(text: String) async throws { try await send(.text, Array(text.utf8)) }

    /// The next frame from the server, or nil once the connection is closed.
    func next(timeout: TimeAmount = .seconds(5)) async throws -> WebSocketFrame? {
        let waiter: WebSocketFrame?? = inbox.withLockedValue { box in
            if !box.frames.isEmpty { return .some(box.frames.removeFirst()) }
            return nil
        }
        if let waiter { return waiter }
        let timer = channel.eventLoop.scheduleTask(in: timeout) { [inbox] in
            let waiters = inbox.withLockedValue { box in defer { box.waiters.removeAll() }; return box.waiters }
            waiters.forEach { $0.resume(returning: nil) }
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let ready: WebSocketFrame?? = inbox.withLockedValue { box in
                if !box.frames.isEmpty { return .some(box.frames.removeFirst()) }
                if !channel.isActive { return .some(nil) }
                box.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// The next frame that is not a ping.
    func nextText(timeout: TimeAmount = .seconds(5)) async throws -> String? {
        while let frame = try await next(timeout: timeout) {
            if frame.opcode == .text { return String(buffer: frame.data) }
            if frame.opcode == .connectionClose { return nil }
        }
        return nil
    }

    func close() async { try? await channel.close() }
}

/// Writes the upgrade request once the connection is up; reports a refused upgrade.
private final class UpgradeRequestWriter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let uri: String
    let headers: [(String, String)]
    let upgraded: EventLoopPromise<Void>

    init(uri: String, headers: [(String, String)], upgraded: EventLoopPromise<Void>) {
        self.uri = uri
        self.headers = headers
        self.upgraded = upgraded
    }

    func channelActive(context: ChannelHandlerContext) {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri)
        head.headers.add(name: "Host", value: "localhost")
        head.headers.add(contentsOf: headers)
        context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let response) = Self.unwrapInboundIn(data) {
            upgraded.fail(TestWebSocketClient.Failure.upgradeRefused(response.status))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        upgraded.fail(error)
        context.close(promise: nil)
    }
}

/// Collects frames for `next()`.
private final class FrameInbox: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame

    let inbox: NIOLockedValueBox<(frames: [WebSocketFrame], waiters: [CheckedContinuation<WebSocketFrame?, Never>])>

    init(inbox: NIOLockedValueBox<(frames: [WebSocketFrame], waiters: [CheckedContinuation<WebSocketFrame?, Never>])>) {
        self.inbox = inbox
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        let waiter: CheckedContinuation<WebSocketFrame?, Never>? = inbox.withLockedValue { box in
            if box.waiters.isEmpty {
                box.frames.append(frame)
                return nil
            }
            return box.waiters.removeFirst()
        }
        waiter?.resume(returning: frame)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let waiters = inbox.withLockedValue { box in defer { box.waiters.removeAll() }; return box.waiters }
        waiters.forEach { $0.resume(returning: nil) }
        context.fireChannelInactive()
    }
}
