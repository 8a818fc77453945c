import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import PriviaSupport
import Synchronization

/// The relay's listeners and the pipeline of each accepted connection:
/// HTTP/1.1 → (`/api/ws/chat` upgrade → ask the pool who the token is → chat socket)
///          → (anything else → a JSON error from `HTTPFallbackHandler`).
public final class RelayServer: Sendable {
    public let configuration: RelayConfiguration
    public let registry: SocketRegistry
    private let group: any EventLoopGroup
    private let environment: ChatSocketEnvironment
    private let authenticator: PoolAuthenticator
    private let listeners = Mutex<[any Channel]>([])

    /// `transport` defaults to a FastCGI client of the pool's socket; tests may pass another.
    public init(configuration: RelayConfiguration, group: any EventLoopGroup, transport: (any PoolTransport)? = nil) {
        let transport = transport ?? FastCGIClient(socketPath: configuration.poolSocketPath)
        let registry = SocketRegistry()
        self.configuration = configuration
        self.registry = registry
        self.group = group
        self.authenticator = PoolAuthenticator(transport: transport)
        self.environment = ChatSocketEnvironment(transport: transport, registry: registry,
                                                 pingInterval: configuration.pingInterval,
                                                 maxMessageSize: configuration.maxMessageSize)
    }

    /// Binds every configured listener.
    public func start() async throws {
        let bootstrap = makeBootstrap()
        if let path = configuration.unixSocketPath {
            try UnixSocketFile.prepare(path)
            let channel = try await bootstrap.bind(unixDomainSocketPath: path).get()
            listeners.withLock { $0.append(channel) }
            try UnixSocketFile.restrict(path, group: configuration.listenGroup)
            relayLog.info("listening", metadata: ["socket": .string(path)])
        }
        if let port = configuration.tcpPort {
            let channel = try await bootstrap.bind(host: "127.0.0.1", port: port).get()
            listeners.withLock { $0.append(channel) }
            relayLog.info("listening", metadata: ["address": .string("127.0.0.1:\(channel.localAddress?.port ?? port)")])
        }
    }

    /// The bound addresses (a TCP port of 0 becomes a real one here).
    public var localAddresses: [SocketAddress] {
        listeners.withLock { $0.compactMap(\.localAddress) }
    }

    /// Stops accepting, closes every socket with 1001 (going away), and waits for them to
    /// close, at most `grace`. Running turns are stopped, so the pool keeps their partial answers.
    public func shutdown(grace: TimeAmount = .seconds(6)) async {
        let channels = listeners.withLock { channels in
            defer { channels.removeAll() }
            return channels
        }
        for channel in channels { try? await channel.close() }
        registry.broadcast(.goingAway)
        let deadline = NIODeadline.now() + grace
        while registry.count > 0, NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        if let path = configuration.unixSocketPath { unlink(path) }
        relayLog.info("stopped", metadata: ["sockets_left": .stringConvertible(registry.count)])
    }

    private func makeBootstrap() -> ServerBootstrap {
        let upgrader = makeUpgrader()
        let allowedOrigins = configuration.allowedOrigins
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.configureHTTPServerPipeline(withServerUpgrade: (
                        upgraders: [upgrader],
                        completionHandler: { context in
                            // The socket speaks frames now; the HTTP fallback must not see them.
                            context.pipeline.syncOperations.removeHandler(name: HTTPFallbackHandler.name, promise: nil)
                        }
                    ))
                    try pipeline.addHandler(HTTPFallbackHandler(allowedOrigins: allowedOrigins), name: HTTPFallbackHandler.name)
                }
            }
    }

    private func makeUpgrader() -> NIOWebSocketServerUpgrader {
        let allowedOrigins = configuration.allowedOrigins
        let authenticator = self.authenticator
        let environment = self.environment
        return NIOWebSocketServerUpgrader(
            maxFrameSize: configuration.maxMessageSize,
            automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                let accept = UpgradeRequest(head).route(allowedOrigins: allowedOrigins) == .chat
                return channel.eventLoop.makeSucceededFuture(accept ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, head in
                // The upgrade is accepted whatever the token: the client must see close code 1008,
                // and a refused handshake would only show it an HTTP error.
                let request = UpgradeRequest(head)
                return authenticator.identify(token: request.token, remoteAddress: request.remoteAddress,
                                              on: channel.eventLoop)
                    .flatMapThrowing { identity in
                        let handler = WebSocketChatHandler(identity: identity, remoteAddress: request.remoteAddress,
                                                           environment: environment)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
            }
        )
    }
}

/// The relay's unix socket file: refuse to steal a live one, remove a stale one, and
/// restrict it to mode 0660 (and a group) once bound.
enum UnixSocketFile {
    static func prepare(_ path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard FileManager.default.fileExists(atPath: path) else { return }
        if try UnixSocketProbe.isListening(path) {
            throw ConfigurationError("another process is listening on \(path); stop it first")
        }
        guard unlink(path) == 0 else {
            throw ConfigurationError("cannot remove the stale socket \(path): \(String(cString: strerror(errno)))")
        }
    }

    static func restrict(_ path: String, group: String?) throws {
        guard chmod(path, 0o660) == 0 else {
            throw ConfigurationError("cannot chmod \(path): \(String(cString: strerror(errno)))")
        }
        guard let group else { return }
        guard let entry = getgrnam(group) else {
            throw ConfigurationError("PRIVIA_LISTEN_GROUP names an unknown group '\(group)'")
        }
        guard chown(path, uid_t.max, entry.pointee.gr_gid) == 0 else {
            throw ConfigurationError("cannot give \(path) to group \(group): \(String(cString: strerror(errno)))")
        }
    }
}
