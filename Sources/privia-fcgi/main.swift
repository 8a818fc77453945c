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

PoolProcess.run(configuration: configuration, prepareMaster: {
    // A bad model configuration fails here, once, rather than in every worker.
    _ = try ModelCatalog.load(stubTokenDelayMilliseconds: configuration.stubDelayMilliseconds)
    let database = try Database(path: configuration.databasePath, maxConnections: 1)
    let applied = try database.withConnection { db -> [String] in
        try PriviaDatabaseAdoption.check(db)
        return try Migrator(migrations: Migration.load(from: configuration.migrationsDirectory)).migrate(db)
    }
    for name in applied { processLog.info("migration applied", metadata: ["name": .string(name)]) }
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
