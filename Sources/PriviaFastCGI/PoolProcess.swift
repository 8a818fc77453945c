import Foundation
import Logging
import PriviaCore
import PriviaHTTP

/// The start of a pool executable: the same binary is the master, or, with `--worker`, one
/// worker the master started. `responder` is built in each worker; `prepareMaster` runs once in
/// the master before the socket opens (migrations, config checks) and returns what the master
/// does with each worker that exits (see `PoolMaster`).
public enum PoolProcess {
    public static func run(configuration: Configuration, prepareMaster: () throws -> PoolMaster.WorkerExitHandler = { { _ in } },
                           responder makeResponder: () throws -> HTTPResponder) -> Never {
        if CommandLine.arguments.contains("--worker") {
            let listenFD = Int32(ProcessInfo.processInfo.environment["PRIVIA_LISTEN_FD"] ?? "") ?? 3
            let responder: HTTPResponder
            do {
                responder = try makeResponder()
            } catch {
                fail("worker cannot start: \(error)")
            }
            Worker(listenSocket: listenFD, threads: configuration.threads, activeThreads: configuration.activeThreads,
                   threadIdleSeconds: configuration.threadIdleSeconds, maxRequests: configuration.maxRequestsPerWorker,
                   responder: responder).run()
        }
        let workerExited: PoolMaster.WorkerExitHandler
        do {
            try PoolMaster.ensureNotRunning(socketPath: configuration.socketPath)
            let runDirectory = (configuration.socketPath as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
            workerExited = try prepareMaster()
            try "\(getpid())\n".write(toFile: runDirectory + "/privia-fcgi.pid", atomically: true, encoding: .utf8)
        } catch {
            fail("\(error)")
        }
        PoolMaster(settings: PoolSettings(workers: configuration.workers, threads: configuration.threads,
                                          graceSeconds: configuration.graceSeconds, socketPath: configuration.socketPath,
                                          listenGroup: configuration.listenGroup), workerExited: workerExited).run()
    }

    /// Logs `message` as an error and exits 1: for start-up failures.
    public static func fail(_ message: String) -> Never {
        processLog.error("\(message)")
        exit(1)
    }
}
