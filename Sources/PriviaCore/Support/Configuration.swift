import Foundation
import PriviaSupport

/// How Privia is configured: environment variables, documented in README.md with these defaults.
public struct Configuration: Sendable {
    public enum Environment: String, Sendable, CaseIterable { case development, production }

    public var environment: Environment
    public var dataDirectory: String
    public var secretKey: String
    public var migrationsDirectory: String
    public var workers: Int
    /// The most threads a worker runs; it starts `activeThreads` and adds more as requests need them.
    public var threads: Int
    /// How many of a worker's threads work on requests at once (see `ActiveThreads`).
    public var activeThreads: Int
    /// How long a worker's thread beyond the first `activeThreads` waits for a request before it ends.
    public var threadIdleSeconds: Int
    public var stubDelayMilliseconds: Int
    public var oauthExchangeSecret: String?
    public var passwordIterations: Int
    public var graceSeconds: Int
    public var heartbeatSeconds: Double
    public var maxRequestsPerWorker: Int
    /// Per-user daily limits on tokens and on estimated cost (in the catalog's currency); 0 = none.
    public var budget: UsageBudget
    /// Lifetimes of browser sessions' tokens.
    public var sessionPolicy: SessionPolicy
    /// PRIVIA_ALLOWED_ORIGINS, normalized: the pages whose cookie-authenticated requests may change things.
    public var allowedOrigins: Set<String>

    public var databasePath: String { dataDirectory + "/privia.db" }
    public var socketPath: String { dataDirectory + "/run/privia-fcgi.sock" }
    public var secretKeyPath: String { dataDirectory + "/secret_key" }

    /// The group owning the FastCGI socket (mode 0660), so nginx's user can reach it; nil: the
    /// pool's own group.
    public var listenGroup: String?
    /// Every setting as it was read, for `privia check-config`.
    public var effectiveSettings: [EnvironmentSettings.Entry] = []

    /// Reads the configuration from `environment`, applying defaults.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> Configuration {
        try from(EnvironmentSettings(env))
    }

    public static func from(_ settings: EnvironmentSettings) throws -> Configuration {
        let environment = try settings.choice("PRIVIA_ENV", default: Environment.development)
        let dataDirectory = settings.path("PRIVIA_DATA_DIR", default: "./var")
        let workers = try settings.int("PRIVIA_WORKERS", default: 1, in: 1...64)
        var config = Configuration(
            environment: environment,
            dataDirectory: dataDirectory,
            secretKey: try resolveSecret(try settings.secret("PRIVIA_SECRET_KEY"), environment: environment,
                                         dataDirectory: dataDirectory),
            migrationsDirectory: settings.path("PRIVIA_MIGRATIONS_DIR", default: defaultMigrationsDirectory()),
            workers: workers,
            threads: try settings.int("PRIVIA_THREADS", default: 512, in: 1...4096),
            activeThreads: try settings.int("PRIVIA_ACTIVE_THREADS",
                                            default: defaultActiveThreads(workers: workers, cores: ProcessInfo.processInfo.activeProcessorCount),
                                            in: 1...4096),
            threadIdleSeconds: try settings.int("PRIVIA_THREAD_IDLE_SECONDS", default: 10, in: 1...86_400),
            stubDelayMilliseconds: try settings.int("PRIVIA_STUB_DELAY_MS", default: 0, in: 0...60_000),
            oauthExchangeSecret: try settings.secret("PRIVIA_OAUTH_EXCHANGE_SECRET"),
            passwordIterations: try settings.int("PRIVIA_PASSWORD_ITERATIONS", default: PasswordHasher.defaultIterations,
                                                 in: PasswordHasher.defaultIterations...10_000_000),
            graceSeconds: try settings.int("PRIVIA_GRACE_SECONDS", default: 30, in: 0...3600),
            heartbeatSeconds: Double(try settings.int("PRIVIA_HEARTBEAT_MS", default: 15_000, in: 50...300_000)) / 1000,
            maxRequestsPerWorker: try settings.int("PRIVIA_MAX_REQUESTS", default: 0, in: 0...Int.max),
            budget: UsageBudget(dailyTokens: try settings.int("PRIVIA_DAILY_TOKEN_LIMIT", default: 0, in: 0...Int.max),
                                dailyCost: try settings.decimal("PRIVIA_DAILY_COST_LIMIT", default: 0)),
            sessionPolicy: SessionPolicy(
                accessTokenLifetime: 60 * (try settings.int("PRIVIA_BROWSER_TOKEN_MINUTES", default: 15, in: 1...1440)),
                refreshTokenLifetime: 86400 * (try settings.int("PRIVIA_REFRESH_TOKEN_DAYS", default: 30, in: 1...365))),
            allowedOrigins: Set((settings.string("PRIVIA_ALLOWED_ORIGINS") ?? "").split(separator: ",")
                .map { normalizedOrigin(String($0)) }.filter { !$0.isEmpty }),
            listenGroup: settings.string("PRIVIA_LISTEN_GROUP")
        )
        config.effectiveSettings = settings.entries
        return config
    }

    /// An origin as browsers send it in `Origin`: no spaces, lower case, no trailing slash.
    public static func normalizedOrigin(_ origin: String) -> String {
        var origin = origin.trimmingCharacters(in: .whitespaces).lowercased()
        while origin.hasSuffix("/") { origin.removeLast() }
        return origin
    }

    /// About four threads per core at work across all workers, at least two per worker: 8 for
    /// one worker on two cores. Fewer left cores idle while a batch committed; many more let
    /// the kernel time-slice requests and stretch the tail (README.md, Tuning).
    public static func defaultActiveThreads(workers: Int, cores: Int) -> Int {
        max(2, 4 * max(1, cores) / max(1, workers))
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

    /// `PRIVIA_SECRET_KEY` (or its file), else the key kept in the data directory. Production
    /// requires the setting and refuses a short or well-known key.
    static func resolveSecret(_ configured: String?, environment: Environment, dataDirectory: String) throws -> String {
        if let key = configured {
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
