import Foundation
import NIOPosix
import PriviaRelay

// privia-relay: the WebSocket relay. Reads its settings from the environment (see
// RelayConfiguration), listens, and on SIGTERM or SIGINT closes every socket with 1001 and exits 0.

let configuration: RelayConfiguration
do {
    configuration = try RelayConfiguration.fromEnvironment()
} catch {
    RelayLog.shared.error("bad configuration", ["error": .string(String(describing: error))])
    exit(2)
}
RelayLog.shared.level = configuration.logLevel

// Installed before anything starts, so an early SIGTERM still stops the relay cleanly.
let stop = ShutdownSignals.watch()

let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads)
let server = RelayServer(configuration: configuration, group: group)
let events = configuration.eventsEnabled
    ? WorkspaceEventPoller(databasePath: configuration.databasePath, registry: server.registry,
                           interval: configuration.eventPollInterval)
    : nil

do {
    try await server.start()
} catch {
    RelayLog.shared.error("cannot start", ["error": .string(String(describing: error))])
    try? await group.shutdownGracefully()
    exit(1)
}
events?.start()

for await signalNumber in stop {
    RelayLog.shared.info("shutting down", ["signal": .int(Int(signalNumber))])
    break
}
events?.stop()
await server.shutdown()
try? await group.shutdownGracefully()
exit(0)
