import Foundation

/// How Privia is configured: environment variables, documented in README.md with these defaults.
public struct Configuration: Sendable {
    public enum Environment: String, Sendable { case development, production }

    public var environment: Environment
    public var dataDirectory: String
    public var secretKey: String
    public var migrationsDirectory: String
    public var workers: Int
    public var threads: Int
    /// How many of a worker's threads work on requests at once (see `ActiveThreads`).
    public var activeThreads: Int
    public var stubDelayMilliseconds: Int
    public var oauthExchangeSecret: String?
    public var passwordIterations: Int
    public var graceSeconds: Int
    public var heartbeatSeconds: Double
    public var maxRequestsPerWorker: Int
    /// Per-user daily limits on tokens and on estimated cost (in the catalog's currency); 0 = none.
    public var budget: UsageBudget

    public var databasePath: String { dataDirectory + "/privia.db" }
    public var socketPath: String { dataDirectory + "/run/privia-fcgi.sock" }
    public var secretKeyPath: String { dataDirectory + "/secret_key" }

    /// Reads the configuration from `environment`, applying defaults.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> Configuration {
        let environment = Environment(rawValue: env["PRIVIA_ENV"] ?? "development")
        guard let environment else {
            throw ConfigurationError("PRIVIA_ENV must be 'development' or 'production', not '\(env["PRIVIA_ENV"]!)'")
        }
        let dataDirectory = absolute(env["PRIVIA_DATA_DIR"] ?? "./var")
        func int(_ name: String, _ fallback: Int, _ range: ClosedRange<Int>) throws -> Int {
            guard let raw = env[name], !raw.isEmpty else { return fallback }
            guard let value = Int(raw), range.contains(value) else {
                throw ConfigurationError("\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound), not '\(raw)'")
            }
            return value
        }
        func decimal(_ name: String) throws -> Double {
            guard let raw = env[name], !raw.isEmpty else { return 0 }
            guard let value = Double(raw), value >= 0, value.isFinite else {
                throw ConfigurationError("\(name) must be a non-negative number, not '\(raw)'")
            }
            return value
        }
        let workers = try int("PRIVIA_WORKERS", 1, 1...64)
        let config = Configuration(
            environment: environment,
            dataDirectory: dataDirectory,
            secretKey: try resolveSecret(env: env, environment: environment, dataDirectory: dataDirectory),
            migrationsDirectory: env["PRIVIA_MIGRATIONS_DIR"] ?? defaultMigrationsDirectory(),
            workers: workers,
            threads: try int("PRIVIA_THREADS", 512, 1...4096),
            activeThreads: try int("PRIVIA_ACTIVE_THREADS",
                                   defaultActiveThreads(workers: workers, cores: ProcessInfo.processInfo.activeProcessorCount),
                                   1...4096),
            stubDelayMilliseconds: try int("PRIVIA_STUB_DELAY_MS", 0, 0...60_000),
            oauthExchangeSecret: env["PRIVIA_OAUTH_EXCHANGE_SECRET"].flatMap { $0.isEmpty ? nil : $0 },
            passwordIterations: try int("PRIVIA_PASSWORD_ITERATIONS", PasswordHasher.defaultIterations,
                                        PasswordHasher.defaultIterations...10_000_000),
            graceSeconds: try int("PRIVIA_GRACE_SECONDS", 30, 0...3600),
            heartbeatSeconds: Double(try int("PRIVIA_HEARTBEAT_MS", 15_000, 50...300_000)) / 1000,
            maxRequestsPerWorker: try int("PRIVIA_MAX_REQUESTS", 0, 0...Int.max),
            budget: UsageBudget(dailyTokens: try int("PRIVIA_DAILY_TOKEN_LIMIT", 0, 0...Int.max),
                                dailyCost: try decimal("PRIVIA_DAILY_COST_LIMIT"))
        )
        return config
    }

    /// About four threads per core at work across all workers, at least two per worker: 8 for
    /// one worker on two cores. Fewer left cores idle while a batch committed; many more let
    /// the kernel time-slice requests and stretch the tail (README.md, Tuning).
    public static func defaultActiveThreads(workers: Int, cores: Int) -> Int {
        max(2, 4 * max(1, cores) / max(1, workers))
    }

    private static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return FileManager.default.currentDirectoryPath + "/" + (path.hasPrefix("./") ? String(path.dropFirst(2)) : path)
    }

    private static func defaultMigrationsDirectory() -> String {
        let candidates = [FileManager.default.currentDirectoryPath + "/Migrations", "/usr/share/privia/migrations"]
        return candidates.first { FileManager.default.fileExists(atPath: $0) } ?? candidates[0]
    }

    /// Keys that are published in examples and docs; a server using one has no secret at all.
    static let wellKnownKeys: Set<String> = [
        "changeme", "change-me", "secret", "your-secret-key", "your-secret-key-here",
        "dev-secret-key", "development-secret", "supersecret", "privia", "password",
    ]

    /// `PRIVIA_SECRET_KEY`, else the key kept in the data directory. Production requires the
    /// variable and refuses a short or well-known key.
    static func resolveSecret(env: [String: String], environment: Environment, dataDirectory: String) throws -> String {
        if let key = env["PRIVIA_SECRET_KEY"], !key.isEmpty {
            if wellKnownKeys.contains(key.lowercased()) {
                throw ConfigurationError("PRIVIA_SECRET_KEY is a well-known example value; generate one with `openssl rand -hex 32`")
            }
            if key.utf8.count < 32 {
                throw ConfigurationError("PRIVIA_SECRET_KEY must be at least 32 characters (it is \(key.utf8.count)); generate one with `openssl rand -hex 32`")
            }
            return key
        }
        if environment == .production {
            throw ConfigurationError("PRIVIA_SECRET_KEY is required when PRIVIA_ENV=production; generate one with `openssl rand -hex 32`")
        }
        return try loadOrCreateSecret(at: dataDirectory + "/secret_key")
    }
}

/// Reads the key file, or creates it with 32 random bytes (hex) and mode 0600. O_EXCL makes
/// concurrent first starts agree on one key.
func loadOrCreateSecret(at path: String) throws -> String {
    let directory = (path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
    if fd >= 0 {
        let key = Crypto.randomBytes(32).hex
        let written = key.withCString { write(fd, $0, strlen($0)) }
        close(fd)
        guard written == key.utf8.count else { throw ConfigurationError("cannot write the secret key to \(path)") }
        return key
    }
    for _ in 0..<50 {
        if let stored = try? String(contentsOfFile: path, encoding: .utf8),
           case let key = stored.trimmingCharacters(in: .whitespacesAndNewlines), key.utf8.count >= 32 {
            return key
        }
        usleep(20_000)  // another process is writing it right now
    }
    throw ConfigurationError("the secret key file \(path) is unreadable or shorter than 32 characters")
}

/// A configuration the server refuses to start with; the message says how to fix it.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
