import Foundation
import NIOCore

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
    public var logLevel: RelayLog.Level

    public var databasePath: String { dataDirectory + "/privia.db" }

    public init(dataDirectory: String, unixSocketPath: String? = nil, tcpPort: Int? = nil, poolSocketPath: String? = nil,
                listenGroup: String? = nil, pingInterval: TimeAmount = .seconds(30), allowedOrigins: Set<String> = [],
                threads: Int = System.coreCount, eventsEnabled: Bool = true,
                eventPollInterval: TimeAmount = .milliseconds(250), maxMessageSize: Int = 64 * 1024,
                logLevel: RelayLog.Level = .info) {
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
        func value(_ name: String) -> String? { env[name].flatMap { $0.isEmpty ? nil : $0 } }
        func int(_ name: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let raw = value(name) else { return nil }
            guard let number = Int(raw), range.contains(number) else {
                throw RelayConfigurationError("\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound), not '\(raw)'")
            }
            return number
        }
        let dataDirectory = absolute(value("PRIVIA_DATA_DIR") ?? "./var")
        let socket = value("PRIVIA_RELAY_SOCKET") ?? dataDirectory + "/run/privia-relay.sock"
        let unixSocketPath: String? = socket == "off" ? nil : absolute(socket)
        let tcpPort = try int("PRIVIA_RELAY_PORT", 1...65535)
        if unixSocketPath == nil && tcpPort == nil {
            throw RelayConfigurationError("PRIVIA_RELAY_SOCKET=off needs PRIVIA_RELAY_PORT, or the relay listens nowhere")
        }
        let levels: [String: RelayLog.Level] = ["debug": .debug, "info": .info, "warning": .warning, "error": .error]
        let levelName = value("PRIVIA_LOG_LEVEL")?.lowercased() ?? "info"
        guard let logLevel = levels[levelName] else {
            throw RelayConfigurationError("PRIVIA_LOG_LEVEL must be debug, info, warning or error, not '\(levelName)'")
        }
        let origins = (value("PRIVIA_ALLOWED_ORIGINS") ?? "").split(separator: ",")
            .map { UpgradeRequest.normalizeOrigin(String($0)) }.filter { !$0.isEmpty }
        return RelayConfiguration(
            dataDirectory: dataDirectory,
            unixSocketPath: unixSocketPath,
            tcpPort: tcpPort,
            poolSocketPath: value("PRIVIA_FCGI_SOCKET").map(absolute) ?? dataDirectory + "/run/privia-fcgi.sock",
            listenGroup: value("PRIVIA_LISTEN_GROUP"),
            pingInterval: .seconds(Int64(try int("PRIVIA_WS_PING_SECONDS", 1...3600) ?? 30)),
            allowedOrigins: Set(origins),
            threads: try int("PRIVIA_RELAY_THREADS", 1...256) ?? System.coreCount,
            eventsEnabled: value("PRIVIA_WS_EVENTS") != "off",
            logLevel: logLevel
        )
    }

    private static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return FileManager.default.currentDirectoryPath + "/" + (path.hasPrefix("./") ? String(path.dropFirst(2)) : path)
    }
}

/// A setting the relay refuses to start with; the message says how to fix it.
public struct RelayConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
