import Foundation
import Logging
import NIOCore
import PriviaSupport

/// How `privia-relay` is set up: environment variables, with these defaults.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `PRIVIA_DATA_DIR` | `./var` | the data directory shared with the pool |
/// | `PRIVIA_RELAY_SOCKET` | `$PRIVIA_DATA_DIR/run/privia-relay.sock` | where nginx reaches the relay; `off` for none |
/// | `PRIVIA_RELAY_PORT` | unset | also listen on 127.0.0.1:PORT (tests, benchmarks) |
/// | `PRIVIA_FCGI_SOCKET` | `$PRIVIA_DATA_DIR/run/privia-fcgi.sock` | the pool's FastCGI socket |
/// | `PRIVIA_LISTEN_GROUP` | unset | group owning the relay socket (mode 0660), like the pool's |
/// | `PRIVIA_WS_PING_SECONDS` | 30 | ping interval; two missed pongs close the socket |
/// | `PRIVIA_ALLOWED_ORIGINS` | unset | comma list; when set, an upgrade with another `Origin` gets 403 |
/// | `PRIVIA_RELAY_THREADS` | cores | event loop threads |
/// | `PRIVIA_WS_EVENTS` | on | `off` disables workspace event polling |
/// | `PRIVIA_LOG_LEVEL` | info | debug, info, warning, error |
public struct RelayConfiguration: Sendable {
    public var dataDirectory: String
    public var unixSocketPath: String?
    public var tcpPort: Int?
    public var poolSocketPath: String
    public var listenGroup: String?
    public var pingInterval: TimeAmount
    public var allowedOrigins: Set<String>
    public var threads: Int
    public var eventsEnabled: Bool
    public var eventPollInterval: TimeAmount
    public var maxMessageSize: Int
    public var logLevel: Logger.Level

    public var databasePath: String { dataDirectory + "/privia.db" }

    public init(dataDirectory: String, unixSocketPath: String? = nil, tcpPort: Int? = nil, poolSocketPath: String? = nil,
                listenGroup: String? = nil, pingInterval: TimeAmount = .seconds(30), allowedOrigins: Set<String> = [],
                threads: Int = System.coreCount, eventsEnabled: Bool = true,
                eventPollInterval: TimeAmount = .milliseconds(250), maxMessageSize: Int = 64 * 1024,
                logLevel: Logger.Level = .info) {
        self.dataDirectory = dataDirectory
        self.unixSocketPath = unixSocketPath
        self.tcpPort = tcpPort
        self.poolSocketPath = poolSocketPath ?? dataDirectory + "/run/privia-fcgi.sock"
        self.listenGroup = listenGroup
        self.pingInterval = pingInterval
        self.allowedOrigins = allowedOrigins
        self.threads = threads
        self.eventsEnabled = eventsEnabled
        self.eventPollInterval = eventPollInterval
        self.maxMessageSize = maxMessageSize
        self.logLevel = logLevel
    }

    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> RelayConfiguration {
        let settings = EnvironmentSettings(env)
        let dataDirectory = settings.path("PRIVIA_DATA_DIR", default: "./var")
        let socket = settings.string("PRIVIA_RELAY_SOCKET", default: dataDirectory + "/run/privia-relay.sock")
        let unixSocketPath: String? = socket == "off" ? nil : EnvironmentSettings.absolute(socket)
        let tcpPort = try settings.optionalInt("PRIVIA_RELAY_PORT", in: 1...65535)
        if unixSocketPath == nil && tcpPort == nil {
            throw ConfigurationError("PRIVIA_RELAY_SOCKET=off needs PRIVIA_RELAY_PORT, or the relay listens nowhere")
        }
        let origins = (settings.string("PRIVIA_ALLOWED_ORIGINS") ?? "").split(separator: ",")
            .map { UpgradeRequest.normalizeOrigin(String($0)) }.filter { !$0.isEmpty }
        return RelayConfiguration(
            dataDirectory: dataDirectory,
            unixSocketPath: unixSocketPath,
            tcpPort: tcpPort,
            poolSocketPath: settings.path("PRIVIA_FCGI_SOCKET", default: dataDirectory + "/run/privia-fcgi.sock"),
            listenGroup: settings.string("PRIVIA_LISTEN_GROUP"),
            pingInterval: .seconds(Int64(try settings.int("PRIVIA_WS_PING_SECONDS", default: 30, in: 1...3600))),
            allowedOrigins: Set(origins),
            threads: try settings.int("PRIVIA_RELAY_THREADS", default: System.coreCount, in: 1...256),
            eventsEnabled: try settings.flag("PRIVIA_WS_EVENTS", default: true),
            logLevel: try settings.choice("PRIVIA_LOG_LEVEL", default: LogLevel.info).level
        )
    }
}

/// The levels `PRIVIA_LOG_LEVEL` names.
public enum LogLevel: String, CaseIterable, Sendable {
    case debug, info, warning, error

    var level: Logger.Level {
        switch self {
        case .debug: .debug
        case .info: .info
        case .warning: .warning
        case .error: .error
        }
    }
}
