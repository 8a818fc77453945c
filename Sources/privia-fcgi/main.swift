import Foundation
import Logging
import PriviaChat
import PriviaCore
import PriviaEngines
import PriviaFastCGI
import PriviaHTTP

// privia-fcgi: the FastCGI pool. Without arguments it is the master (migrations, socket,
// workers); with --worker it is one worker process, started by the master.

let configuration: Configuration
do {
    configuration = try Configuration.fromEnvironment()
} catch {
    PoolProcess.fail("\(error)")
}

/// Marks interrupted the answers that `owner` (or, without one, any process no longer alive) was
/// streaming; logs how many, or why it could not. The pool runs without it either way.
func interruptTurns(_ turns: TurnStore, of owner: ProcessIdentity?) {
    var fields: Logger.Metadata = [:]
    if let owner { fields["worker_pid"] = .stringConvertible(Int(owner.pid)) }
    do {
        let count = try owner.map(turns.interruptTurns(of:)) ?? turns.interruptTurnsOfDeadProcesses()
        fields["answers"] = .stringConvertible(count)
        if count > 0 { processLog.info("answers in progress marked interrupted", metadata: fields) }
    } catch {
        fields["error"] = .string("\(error)")
        processLog.error("cannot mark answers in progress interrupted", metadata: fields)
    }
}

PoolProcess.run(configuration: configuration, prepareMaster: {
    // A bad model configuration fails here, once, rather than in every worker.
    _ = try ModelCatalog.load(stubTokenDelayMilliseconds: configuration.stubDelayMilliseconds)
    let database = try Database(path: configuration.databasePath, maxConnections: 1)
    let applied = try database.withConnection { db -> [String] in
        try PriviaDatabaseAdoption.check(db)
        return try Migrator(migrations: Migration.load(from: configuration.migrationsDirectory)).migrate(db)
    }
    for name in applied { processLog.info("migration applied", metadata: ["name": .string(name)]) }
    // Answers that were streaming when the whole pool last died (no master was left to see
    // its workers go) are interrupted ones; so are those of each worker that exits from now on.
    let turns = TurnStore(database: database)
    interruptTurns(turns, of: nil)
    return { worker in interruptTurns(turns, of: worker) }
}, responder: {
    let database = try Database(path: configuration.databasePath, maxConnections: 16)
    let accounts = AccountService(database: database, hasher: PasswordHasher(iterations: configuration.passwordIterations),
                                  signer: AccessTokenSigner(secretKey: configuration.secretKey),
                                  sessionPolicy: configuration.sessionPolicy)
    let catalog = try ModelCatalog.load(stubTokenDelayMilliseconds: configuration.stubDelayMilliseconds)
    let chat = ChatService(database: database, engine: RoutingEngine(catalog: catalog), catalog: catalog,
                           budget: configuration.budget)
    return PriviaAPI(database: database, accounts: accounts, chat: chat,
                     settings: .init(environment: configuration.environment.rawValue,
                                     oauthExchangeSecret: configuration.oauthExchangeSecret,
                                     heartbeatSeconds: configuration.heartbeatSeconds,
                                     allowedOrigins: configuration.allowedOrigins))
})
