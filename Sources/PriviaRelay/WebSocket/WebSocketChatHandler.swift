import Logging
import NIOCore
import NIOWebSocket
import PriviaCore
import PriviaSupport

/// What every chat socket of one server shares.
public struct ChatSocketEnvironment: Sendable {
    public var transport: any PoolTransport
    public var registry: SocketRegistry
    /// A ping goes out this often; a socket that left two unanswered is closed.
    public var pingInterval: TimeAmount
    /// How long to wait for the client's close frame after sending ours.
    public var closeTimeout: TimeAmount
    /// How long a stopped turn may take to send its `done`; past it the relay ends the turn itself.
    public var stopTimeout: TimeAmount
    public var maxMessageSize: Int

    public init(transport: any PoolTransport, registry: SocketRegistry = SocketRegistry(),
                pingInterval: TimeAmount = .seconds(30), closeTimeout: TimeAmount = .seconds(5),
                stopTimeout: TimeAmount = .seconds(10), maxMessageSize: Int = 64 * 1024) {
        self.transport = transport
        self.registry = registry
        self.pingInterval = pingInterval
        self.closeTimeout = closeTimeout
        self.stopTimeout = stopTimeout
        self.maxMessageSize = maxMessageSize
    }
}

/// One chat socket after the upgrade: frames in, turns to the pool, frames out.
///
/// The chat rules live in `ChatSocketSession`; this handler does the I/O: it assembles
/// frames, answers pings, pings the client, runs the pool requests the session asks for,
/// and closes the socket properly (a close frame, then the client's answer or a timeout).
public final class WebSocketChatHandler: ChannelInboundHandler {
    public typealias InboundIn = WebSocketFrame
    public typealias OutboundOut = WebSocketFrame

    private enum Lifecycle { case open, closing, closed }

    private struct Upstream {
        let call: any PoolCall
        let requestID: String
        let started: NIODeadline
        /// Set while a stop waits for the turn's `done`.
        var stopBound: Scheduled<Void>?
    }

    private let identity: SocketIdentity
    private let remoteAddress: String
    private let environment: ChatSocketEnvironment

    private var context: ChannelHandlerContext?
    private var lifecycle = Lifecycle.open
    private var session = ChatSocketSession()
    private var assembler: WebSocketMessageAssembler
    private var upstreams: [ChatSocketSession.TurnID: Upstream] = [:]
    private var pingTimer: Scheduled<Void>?
    private var closeTimer: Scheduled<Void>?
    private var unansweredPings = 0

    public init(identity: SocketIdentity, remoteAddress: String, environment: ChatSocketEnvironment) {
        self.identity = identity
        self.remoteAddress = remoteAddress
        self.environment = environment
        self.assembler = WebSocketMessageAssembler(maxMessageSize: environment.maxMessageSize)
    }

    private var userID: String? {
        if case .user(let id, _) = identity { return id }
        return nil
    }

    // MARK: Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        guard context.channel.isActive else {  // the client left while the pool was asked
            lifecycle = .closed
            return
        }
        environment.registry.add(context.channel, userID: userID)
        switch identity {
        case .rejected(let reason):
            close(.policyViolation, reason: reason)
        case .unavailable:
            relayLog.warning("socket refused: the pool could not authenticate it")
            close(.unexpectedServerError, reason: "Authentication is unavailable, try again")
        case .user(let id, _):
            relayLog.info("socket opened", metadata: ["user_id": .string(id), "remote_addr": .string(remoteAddress)])
            schedulePing()
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        tearDown()
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        tearDown()
        self.context = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        unansweredPings = 0
        let output = assembler.receive(frame)
        guard lifecycle == .open else {
            if case .close = output { context.close(promise: nil) }
            return
        }
        switch output {
        case .text(let text):
            perform(session.receive(text: text))
        case .binary:
            close(.unacceptableData, reason: "Binary frames are not supported")
        case .ping(let payload):
            context.writeAndFlush(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: payload)), promise: nil)
        case .pong, .pending:
            break
        case .close(let code):
            answerClose(code: code)
        case .violation(let code, let reason):
            close(code, reason: reason)
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event as? RelayNotice {
        case .goingAway?:
            close(.goingAway, reason: "Server shutting down")
        case .workspaceEvents(let frames)?:
            if userID != nil { send(encoded: frames) }
        case nil:
            context.fireUserInboundEventTriggered(event)
        }
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        // A slow client: stop reading the pool's answer until the socket drains.
        if let turn = session.runningTurn { upstreams[turn]?.call.setReading(context.channel.isWritable) }
        context.fireChannelWritabilityChanged()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOWebSocketError {
            // WebSocketProtocolErrorHandler already sent the close frame (1002, or 1009 for an
            // oversized frame) and closes the channel.
            lifecycle = .closing
            return
        }
        relayLog.warning("socket error", metadata: ["error": .string(String(describing: error))])
        context.close(promise: nil)
    }

    // MARK: Turns

    private func perform(_ actions: [ChatSocketSession.Action]) {
        for action in actions {
            switch action {
            case .send(let frame):
                send(frame)
            case .startTurn(let turn, let body):
                startTurn(turn, body: body)
            case .stopTurn(let turn):
                stopTurn(turn)
            case .cancelTurn(let turn):
                if let upstream = upstreams.removeValue(forKey: turn) {
                    upstream.stopBound?.cancel()
                    upstream.call.cancel()
                    logTurnEnd(upstream, outcome: "cancelled")
                }
            }
        }
    }

    private func startTurn(_ turn: ChatSocketSession.TurnID, body: JSON) {
        guard let context, case .user(let id, let token) = identity else { return }
        let requestID = PoolRequests.newRequestID()
        let request = PoolRequests.stream(body: body, token: token, remoteAddress: remoteAddress, requestID: requestID)
        relayLog.info("turn started", metadata: ["user_id": .string(id), "request_id": .string(requestID)])
        let call = environment.transport.start(request, on: context.eventLoop) { [weak self] event in
            self?.upstream(event, turn: turn)
        }
        upstreams[turn] = Upstream(call: call, requestID: requestID, started: .now())
    }

    /// Asks the pool to stop and bounds the wait for the turn's `done`.
    private func stopTurn(_ turn: ChatSocketSession.TurnID) {
        guard let context, upstreams[turn] != nil else { return }
        upstreams[turn]?.call.stop()
        upstreams[turn]?.stopBound = context.eventLoop.assumeIsolated().scheduleTask(in: environment.stopTimeout) { [weak self] in
            guard let self else { return }
            if let upstream = self.upstreams[turn] {
                relayLog.warning("stop not answered in time", metadata: ["request_id": .string(upstream.requestID)])
            }
            self.perform(self.session.stopTimedOut(turn))
        }
    }

    private func upstream(_ event: FastCGIResponseEvent, turn: ChatSocketSession.TurnID) {
        let wasRunning = session.runningTurn == turn
        let wasStopping = wasRunning && session.isStopping
        perform(session.receive(event, forTurn: turn))
        let ended = wasRunning && session.runningTurn != turn
        if ended { upstreams[turn]?.stopBound?.cancel() }
        switch event {
        case .end, .failed:
            if let upstream = upstreams.removeValue(forKey: turn), ended {
                logTurnEnd(upstream, outcome: outcome(of: event))
            }
        case .head, .body:
            if ended, let upstream = upstreams[turn] {
                // `done` or `error` sent; the pool is closing up
                logTurnEnd(upstream, outcome: wasStopping ? "stopped" : "answered")
            }
        }
    }

    private func outcome(of event: FastCGIResponseEvent) -> String {
        if case .failed(let error) = event { return "failed: \(error)" }
        return "ended"
    }

    private func logTurnEnd(_ upstream: Upstream, outcome: String) {
        let elapsed = (NIODeadline.now() - upstream.started).nanoseconds / 1_000_000
        relayLog.info("turn finished", metadata: [
            "user_id": .string(userID ?? ""), "request_id": .string(upstream.requestID),
            "outcome": .string(outcome), "duration_ms": .stringConvertible(Int(elapsed)),
        ])
    }

    // MARK: Frames out

    private func send(_ json: JSON) {
        send(encoded: [ByteBuffer(bytes: json.encoded())])
    }

    /// Text frames written together and flushed once: one system call for a poll's events.
    private func send(encoded texts: [ByteBuffer]) {
        guard let context, lifecycle == .open, !texts.isEmpty else { return }
        for text in texts {
            context.write(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: text)), promise: nil)
        }
        context.flush()
    }

    /// Starts the closing handshake: our close frame, then the client's, or a timeout.
    private func close(_ code: WebSocketErrorCode, reason: String) {
        guard let context, lifecycle == .open else { return }
        lifecycle = .closing
        perform(session.socketClosed())
        pingTimer?.cancel()
        context.writeAndFlush(Self.wrapOutboundOut(Self.closeFrame(code, reason: reason, allocator: context.channel.allocator)),
                              promise: nil)
        let loopContext = context
        closeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: environment.closeTimeout) {
            loopContext.close(promise: nil)
        }
        if code != .goingAway && code != .normalClosure {
            relayLog.info("socket closing", metadata: ["code": .stringConvertible(Int(code.number)), "reason": .string(reason),
                                                    "user_id": .string(userID ?? "")])
        }
    }

    /// The client closed first: echo its code (RFC 6455 section 5.5.1), then close the connection.
    private func answerClose(code: UInt16?) {
        guard let context else { return }
        lifecycle = .closing
        perform(session.socketClosed())
        let echo = WebSocketErrorCode(codeNumber: Int(code ?? 1000))
        let frame = Self.closeFrame(echo, reason: "", allocator: context.channel.allocator)
        let loopContext = context
        context.writeAndFlush(Self.wrapOutboundOut(frame)).assumeIsolated().whenComplete { _ in
            loopContext.close(promise: nil)
        }
    }

    static func closeFrame(_ code: WebSocketErrorCode, reason: String, allocator: ByteBufferAllocator) -> WebSocketFrame {
        var data = allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        // A control frame carries at most 125 bytes: the code and 123 bytes of reason.
        var reasonBytes = Array(reason.utf8.prefix(123))
        while String(validating: reasonBytes, as: UTF8.self) == nil { reasonBytes.removeLast() }
        data.writeBytes(reasonBytes)
        return WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
    }

    // MARK: Liveness

    private func schedulePing() {
        guard let context else { return }
        pingTimer = context.eventLoop.assumeIsolated().scheduleTask(in: environment.pingInterval) { [weak self] in
            self?.pingTick()
        }
    }

    private func pingTick() {
        guard let context, lifecycle == .open else { return }
        if unansweredPings >= 2 {
            relayLog.info("socket closed: no pong", metadata: ["user_id": .string(userID ?? "")])
            context.close(promise: nil)
            return
        }
        unansweredPings += 1
        context.writeAndFlush(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer())), promise: nil)
        schedulePing()
    }

    private func tearDown() {
        guard lifecycle != .closed else { return }
        lifecycle = .closed
        pingTimer?.cancel()
        closeTimer?.cancel()
        perform(session.socketClosed())
        for upstream in upstreams.values {
            upstream.stopBound?.cancel()
            upstream.call.cancel()
        }
        upstreams.removeAll()
        if let context { environment.registry.remove(context.channel) }
    }
}
