import Foundation
import Logging
import NIOPosix
import PriviaRelay
import PriviaSupport

// privia-relay: the WebSocket relay. Reads its settings from the environment (see
// RelayConfiguration), listens, and on SIGTERM or SIGINT closes every socket with 1001 and exits 0.

let configuration: RelayConfiguration
do {
    configuration = try RelayConfiguration.fromEnvironment()
} catch {
    relayLog.error("bad configuration", metadata: ["error": .string(String(describing: error))])
    exit(2)
}
JSONLineLogHandler.minimumLevel = configuration.logLevel

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
    relayLog.error("cannot start", metadata: ["error": .string(String(describing: error))])
    try? await group.shutdownGracefully()
    exit(1)
}
events?.start()

for await signalNumber in stop {
    relayLog.info("shutting down", metadata: ["signal": .stringConvertible(Int(signalNumber))])
    break
}
events?.stop()
await server.shutdown()
try? await group.shutdownGracefully()
exit(0)
