import Foundation
import PriviaChat
import PriviaCore
import PriviaEngines
import PriviaFastCGI
import PriviaHTTP

// privia-fcgi: the FastCGI pool. Without arguments it is the master (migrations, socket,
// workers); with --worker it is one worker process, started by the master.

func fail(_ message: String) -> Never {
    ProcessLog.error(message)
    exit(1)
}

let configuration: Configuration
do {
    configuration = try Configuration.fromEnvironment()
} catch {
    fail("\(error)")
}

if CommandLine.arguments.contains("--worker") {
    let listenFD = Int32(ProcessInfo.processInfo.environment["PRIVIA_LISTEN_FD"] ?? "") ?? 3
    let api: PriviaAPI
    do {
        let database = try Database(path: configuration.databasePath, maxConnections: 16)
        let accounts = AccountService(database: database, hasher: PasswordHasher(iterations: configuration.passwordIterations),
                                      signer: AccessTokenSigner(secretKey: configuration.secretKey))
        let catalog = try ModelCatalog.load(stubTokenDelayMilliseconds: configuration.stubDelayMilliseconds)
        let chat = ChatService(database: database, engine: RoutingEngine(catalog: catalog), catalog: catalog,
                               budget: configuration.budget)
        api = PriviaAPI(database: database, accounts: accounts, chat: chat, catalog: catalog, budget: configuration.budget, settings: .init(
            environment: configuration.environment.rawValue, oauthExchangeSecret: configuration.oauthExchangeSecret,
            heartbeatSeconds: configuration.heartbeatSeconds))
    } catch {
        fail("worker cannot start: \(error)")
    }
    Worker(listenSocket: listenFD, threads: configuration.threads, maxRequests: configuration.maxRequestsPerWorker,
           responder: api).run()
}

do {
    try PoolMaster.ensureNotRunning(socketPath: configuration.socketPath)
    let runDirectory = (configuration.socketPath as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
    // A bad model configuration fails here, once, rather than in every worker.
    _ = try ModelCatalog.load(stubTokenDelayMilliseconds: configuration.stubDelayMilliseconds)
    let database = try Database(path: configuration.databasePath, maxConnections: 1)
    let applied = try database.withConnection { db -> [String] in
        try PriviaDatabaseAdoption.check(db)
        return try Migrator(migrations: Migration.load(from: configuration.migrationsDirectory)).migrate(db)
    }
    for name in applied { ProcessLog.info("migration applied", [("name", .string(name))]) }
    try "\(getpid())\n".write(toFile: runDirectory + "/privia-fcgi.pid", atomically: true, encoding: .utf8)
} catch {
    fail("\(error)")
}

let environment = ProcessInfo.processInfo.environment
PoolMaster(settings: PoolSettings(
    workers: configuration.workers, threads: configuration.threads, graceSeconds: configuration.graceSeconds,
    socketPath: configuration.socketPath, listenGroup: environment["PRIVIA_LISTEN_GROUP"].flatMap { $0.isEmpty ? nil : $0 }
)).run()
