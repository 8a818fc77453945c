import NIOCore
import NIOHTTP1
import NIOWebSocket
import PriviaCore
import PriviaSupport

/// Answers every request that did not become a WebSocket, with a JSON error, then closes.
///
/// `/api/ws/chat` without a valid upgrade gets 426 (or 400 for a broken upgrade request),
/// an `Origin` outside the allowlist 403, anything else 404.
final class HTTPFallbackHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let name = "privia-http-fallback"

    private let allowedOrigins: Set<String>
    private var responded = false

    init(allowedOrigins: Set<String>) {
        self.allowedOrigins = allowedOrigins
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = Self.unwrapInboundIn(data), !responded else { return }
        responded = true
        let request = UpgradeRequest(head)
        var headers = HTTPHeaders()
        let status: HTTPResponseStatus
        let body: JSON
        switch request.route(allowedOrigins: allowedOrigins) {
        case .notFound:
            status = .notFound
            body = ["detail": "Not Found", "code": "NOT_FOUND"]
        case .forbiddenOrigin:
            status = .forbidden
            body = ["detail": "Origin not allowed", "code": "AUTH"]
        case .chat where head.headers.contains(name: "upgrade"):
            status = .badRequest
            body = ["detail": "Invalid WebSocket upgrade request", "code": "VALIDATION"]
        case .chat:
            status = .upgradeRequired
            headers.add(name: "Upgrade", value: "websocket")
            body = ["detail": "This endpoint only speaks WebSocket", "code": "VALIDATION"]
        }
        let bytes = body.encoded()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(bytes.count))
        headers.add(name: "Connection", value: "close")
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
                      promise: nil)
        context.write(Self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
        let loopContext = context
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            loopContext.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A refused upgrade reports its reason here before the request itself arrives.
        if error is NIOWebSocketUpgradeError { return }
        context.close(promise: nil)
    }
}
