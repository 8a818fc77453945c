import Foundation
import PriviaCore
import PriviaHTTP

/// The start of a pool executable: the same binary is the master, or, with `--worker`, one
/// worker the master started. `responder` is built in each worker; `prepareMaster` runs once in
/// the master before the socket opens (migrations, config checks).
public enum PoolProcess {
    public static func run(configuration: Configuration, prepareMaster: () throws -> Void = {},
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
        if CommandLine.arguments.contains(masterArgument) {
            nameProcess()
        } else {
            do {
                try PoolMaster.ensureNotRunning(socketPath: configuration.socketPath)
                let runDirectory = (configuration.socketPath as NSString).deletingLastPathComponent
                try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
                try prepareMaster()
                try "\(getpid())\n".write(toFile: runDirectory + "/privia-fcgi.pid", atomically: true, encoding: .utf8)
            } catch {
                fail("\(error)")
            }
            superviseFromAFreshImage()
        }
        let group = ProcessInfo.processInfo.environment["PRIVIA_LISTEN_GROUP"].flatMap { $0.isEmpty ? nil : $0 }
        PoolMaster(settings: PoolSettings(workers: configuration.workers, threads: configuration.threads,
                                          graceSeconds: configuration.graceSeconds, socketPath: configuration.socketPath,
                                          listenGroup: group)).run()
    }

    /// The argument of a master that has prepared the pool and now supervises it.
    static let masterArgument = "--master"

    /// Replaces the preparing image with a fresh one of the same executable (same pid, same
    /// environment, `--master` added), which only supervises. Otherwise the master, a process
    /// that waits for signals and children, would keep resident every page that the checks and
    /// the migrations touched (SQLite, OpenSSL, the catalog's JSON, their heap) for its life.
    /// Returns only if the exec fails, and then this image supervises.
    private static func superviseFromAFreshImage() {
        // /proc/self/exe: the executable this process runs, even if its file was replaced since.
        let argv = (CommandLine.arguments + [masterArgument]).map { strdup($0) } + [nil]
        execv("/proc/self/exe", argv)
        ProcessLog.error("cannot start the master's supervising image; supervising from this one",
                         [("errno", .int(Int(errno)))])
        argv.forEach { free($0) }
    }

    /// Gives the supervising image the command name it was started with (an exec through
    /// /proc/self/exe names it "exe"), which `ps` and the launcher's checks look for.
    private static func nameProcess() {
        let name = String((CommandLine.arguments[0].split(separator: "/").last ?? "privia-fcgi").prefix(15))
        let fd = open("/proc/self/comm", O_WRONLY)
        guard fd >= 0 else { return }
        _ = name.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// Logs `message` as an error and exits 1: for start-up failures.
    public static func fail(_ message: String) -> Never {
        ProcessLog.error(message)
        exit(1)
    }
}
