import Logging
import NIOCore
import NIOPosix

/// What happens to one FastCGI request, delivered in order on the caller's event loop.
public enum FastCGIResponseEvent: Sendable {
    case head(CGIResponseHead)
    case body(ByteBuffer)
    /// The response is complete (END_REQUEST, or the pool closed the connection after the head).
    case end
    /// No response: the pool could not be reached, or broke off before sending a head.
    case failed(any Error)
}

/// A request in flight. `cancel()` closes the connection, which the pool sees as its client
/// leaving (it stops generating); no event is delivered after it.
public protocol PoolCall: AnyObject {
    func cancel()
    /// Asks the pool to stop by shutting down the writing side of the connection, which the
    /// pool sees as its client stopping; the rest of the answer (its last event) still comes.
    func stop()
    /// Stops (false) or resumes (true) reading the response, for backpressure.
    func setReading(_ reading: Bool)
}

/// Carries FastCGI requests to the pool. The relay uses `FastCGIClient`; tests use fakes.
public protocol PoolTransport: Sendable {
    /// Starts `request`. Must be called on `eventLoop`; `onEvent` runs on it.
    func start(_ request: FastCGIRequest, on eventLoop: any EventLoop,
               onEvent: @escaping (FastCGIResponseEvent) -> Void) -> any PoolCall
}

public enum FastCGIClientError: Error, Equatable, CustomStringConvertible {
    case closedBeforeResponse
    case timedOut
    case responseTooLarge

    public var description: String {
        switch self {
        case .closedBeforeResponse: return "the pool closed the connection before answering"
        case .timedOut: return "the pool did not answer in time"
        case .responseTooLarge: return "the pool's answer is too large"
        }
    }
}

/// A FastCGI client over a unix socket: one connection per request, as nginx does with
/// `fastcgi_keep_conn off` (a kept connection would pin one of the pool's threads).
public struct FastCGIClient: PoolTransport {
    public let socketPath: String
    public let connectTimeout: TimeAmount

    public init(socketPath: String, connectTimeout: TimeAmount = .seconds(5)) {
        self.socketPath = socketPath
        self.connectTimeout = connectTimeout
    }

    public func start(_ request: FastCGIRequest, on eventLoop: any EventLoop,
                      onEvent: @escaping (FastCGIResponseEvent) -> Void) -> any PoolCall {
        eventLoop.preconditionInEventLoop()
        let call = FastCGICall(onEvent: onEvent)
        ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .connect(unixDomainSocketPath: socketPath)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    call.connected(channel, request: request)
                case .failure(let error):
                    call.deliver(.failed(error))
                }
            }
        return call
    }
}

/// One request on its own connection; lives on the connection's event loop.
final class FastCGICall: PoolCall {
    private var onEvent: ((FastCGIResponseEvent) -> Void)?
    private var channel: (any Channel)?
    private var reading = true
    private var stopping = false

    init(onEvent: @escaping (FastCGIResponseEvent) -> Void) {
        self.onEvent = onEvent
    }

    func connected(_ channel: any Channel, request: FastCGIRequest) {
        guard onEvent != nil else {  // cancelled while connecting
            channel.close(promise: nil)
            return
        }
        self.channel = channel
        do {
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(ByteToMessageHandler(FastCGIRecordDecoder()))
            try pipeline.addHandler(FastCGIResponseHandler(call: self))
        } catch {
            deliver(.failed(error))
            channel.close(promise: nil)
            return
        }
        if !reading { channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in } }
        channel.writeAndFlush(request.encoded(), promise: nil)
        if stopping { channel.close(mode: .output, promise: nil) }  // stopped while connecting
    }

    /// Passes an event on; the last one (`end` or `failed`) releases the callback.
    func deliver(_ event: FastCGIResponseEvent) {
        guard let onEvent else { return }
        switch event {
        case .end, .failed:
            self.onEvent = nil
            channel?.close(promise: nil)
            channel = nil
        case .head, .body:
            break
        }
        onEvent(event)
    }

    func cancel() {
        onEvent = nil
        channel?.close(promise: nil)
        channel = nil
    }

    func stop() {
        guard onEvent != nil, !stopping else { return }
        stopping = true
        // After the request's pending writes, so the pool always reads the whole request.
        channel?.close(mode: .output, promise: nil)
    }

    func setReading(_ reading: Bool) {
        guard reading != self.reading else { return }
        self.reading = reading
        if let channel {
            channel.setOption(ChannelOptions.autoRead, value: reading).whenComplete { _ in }
            if reading { channel.read() }
        }
    }
}

/// Reads STDOUT, STDERR and END_REQUEST records of one response and reports them to its call.
final class FastCGIResponseHandler: ChannelInboundHandler {
    typealias InboundIn = FastCGIRecord

    private let call: FastCGICall
    private var parser = CGIResponseParser()

    init(call: FastCGICall) {
        self.call = call
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let record = Self.unwrapInboundIn(data)
        switch record.kind {
        case .stdout:
            do {
                for output in try parser.feed(record.content) {
                    switch output {
                    case .head(let head): call.deliver(.head(head))
                    case .body(let body): call.deliver(.body(body))
                    }
                }
            } catch {
                call.deliver(.failed(error))
            }
        case .stderr:
            let text = String(buffer: record.content)
            relayLog.warning("pool stderr", metadata: ["text": .string(String(text.prefix(500)))])
        case .endRequest:
            call.deliver(parser.sawHead ? .end : .failed(FastCGIClientError.closedBeforeResponse))
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        call.deliver(parser.sawHead ? .end : .failed(FastCGIClientError.closedBeforeResponse))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        call.deliver(parser.sawHead ? .end : .failed(error))
        context.close(promise: nil)
    }
}

/// A whole, small response (for `GET /api/auth/me`).
public struct FastCGIResponse: Sendable {
    public var head: CGIResponseHead
    public var body: [UInt8]
}

extension PoolTransport {
    /// Runs `request` and collects the whole response, failing past `timeout` or `maxBodyBytes`.
    public func fetch(_ request: FastCGIRequest, on eventLoop: any EventLoop,
                      timeout: TimeAmount = .seconds(10), maxBodyBytes: Int = 1 << 20) -> EventLoopFuture<FastCGIResponse> {
        eventLoop.flatSubmit {
            let promise = eventLoop.makePromise(of: FastCGIResponse.self)
            var head: CGIResponseHead?
            var body: [UInt8] = []
            var call: (any PoolCall)?
            let timer = eventLoop.assumeIsolated().scheduleTask(in: timeout) {
                call?.cancel()
                promise.fail(FastCGIClientError.timedOut)
            }
            call = self.start(request, on: eventLoop) { event in
                switch event {
                case .head(let h):
                    head = h
                case .body(let bytes):
                    body += bytes.readableBytesView
                    if body.count > maxBodyBytes {
                        call?.cancel()
                        timer.cancel()
                        promise.fail(FastCGIClientError.responseTooLarge)
                    }
                case .end:
                    timer.cancel()
                    promise.succeed(FastCGIResponse(head: head!, body: body))
                case .failed(let error):
                    timer.cancel()
                    promise.fail(error)
                }
            }
            return promise.futureResult
        }
    }
}
