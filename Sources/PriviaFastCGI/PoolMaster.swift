import CFastCGI
import Foundation
import Logging
import PriviaCore
import PriviaSupport

/// Settings of the pool, named after php-fpm's where one exists.
public struct PoolSettings: Sendable {
    /// `pm.max_children` for a static pool.
    public var workers: Int
    /// Threads per worker: each serves one request (or holds one SSE stream) at a time.
    public var threads: Int
    /// `process_control_timeout`: how long a stopping worker may finish in-flight requests.
    public var graceSeconds: Int
    /// `listen`: the FastCGI unix socket.
    public var socketPath: String
    /// `listen.group`: the group that may connect (nginx's), with mode 0660.
    public var listenGroup: String?
    /// `listen.backlog`.
    public var backlog: Int32 = 1024

    public init(workers: Int, threads: Int, graceSeconds: Int, socketPath: String, listenGroup: String?) {
        self.workers = workers
        self.threads = threads
        self.graceSeconds = graceSeconds
        self.socketPath = socketPath
        self.listenGroup = listenGroup
    }
}

/// The pool's master process, like php-fpm's: opens the socket, starts the workers, restarts
/// one that dies, replaces them all on SIGHUP without dropping a request, and on SIGTERM,
/// SIGINT or SIGQUIT stops them gracefully within the grace period.
///
/// Workers are this executable started again with `--worker` (posix_spawn, the listening
/// socket as fd 3): forking a process that already runs Swift threads is not safe.
///
/// Once a worker has exited and been reaped (and its replacement started), `workerExited` is
/// told which process it was, to clean up what it left: the answers it was streaming.
public final class PoolMaster {
    /// Runs in the master for each worker that has exited, whatever the cause.
    public typealias WorkerExitHandler = (ProcessIdentity) -> Void

    private let settings: PoolSettings
    private let workerExited: WorkerExitHandler
    private var listenSocket: Int32 = -1
    /// Live workers; a retiring one is draining after a reload and is not replaced. `identity`
    /// is read at the start, as the worker's turn rows name it.
    private var workers: [pid_t: (slot: Int, retiring: Bool, identity: ProcessIdentity?)] = [:]
    private var stopDeadline: Date?

    public init(settings: PoolSettings, workerExited: @escaping WorkerExitHandler = { _ in }) {
        self.settings = settings
        self.workerExited = workerExited
    }

    /// Refuses to start when another master answers on the socket: `FCGX_OpenSocket` would
    /// silently unlink and steal its path.
    public static func ensureNotRunning(socketPath: String) throws {
        if try UnixSocketProbe.isListening(socketPath) {
            throw ConfigurationError("another privia-fcgi is already listening on \(socketPath); stop it first")
        }
    }

    public func run() -> Never {
        FCGX_Init()
        signal(SIGPIPE, SIG_IGN)
        listenSocket = FCGX_OpenSocket(settings.socketPath, settings.backlog)
        guard listenSocket >= 0 else {
            processLog.error("cannot open the FastCGI socket", metadata: ["path": .string(settings.socketPath)])
            exit(1)
        }
        // Non-blocking, so a worker thread that loses an accept race gets EAGAIN (see Worker).
        _ = fcntl(listenSocket, F_SETFL, fcntl(listenSocket, F_GETFL) | O_NONBLOCK)
        chmod(settings.socketPath, 0o660)
        if let group = settings.listenGroup, let entry = getgrnam(group) {
            chown(settings.socketPath, getuid(), entry.pointee.gr_gid)
        }

        var signals = sigset_t()
        sigemptyset(&signals)
        for number in [SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGCHLD] { sigaddset(&signals, number) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        for slot in 0..<settings.workers { spawn(slot: slot) }
        processLog.info("pool ready", metadata: ["socket": .string(settings.socketPath), "workers": .stringConvertible(settings.workers),
                                                 "threads": .stringConvertible(settings.threads)])

        var timeout = timespec(tv_sec: 0, tv_nsec: 200_000_000)
        while true {
            let number = sigtimedwait(&signals, nil, &timeout)
            switch number {
            case SIGTERM, SIGINT, SIGQUIT: beginStop(signal: number)
            case SIGHUP: reload()
            default: break
            }
            reapChildren()
            if let deadline = stopDeadline {
                if workers.isEmpty { finish() }
                if Date() >= deadline {
                    processLog.error("grace period over, killing workers", metadata: ["left": .stringConvertible(workers.count)])
                    for pid in workers.keys { kill(pid, SIGKILL) }
                }
            }
        }
    }

    private func spawn(slot: Int) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, listenSocket, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGCHLD, SIGPIPE] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let executable = "/proc/self/exe"
        let arguments = [CommandLine.arguments[0], "--worker"]
        var environment = ProcessInfo.processInfo.environment
        environment["PRIVIA_LISTEN_FD"] = "3"
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid = pid_t()
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        if rc == 0 {
            workers[pid] = (slot, false, ProcessIdentity(pid: pid))
            processLog.info("worker started", metadata: ["worker_pid": .stringConvertible(Int(pid)), "slot": .stringConvertible(slot)])
        } else {
            processLog.error("cannot start a worker", metadata: ["errno": .stringConvertible(Int(rc))])
        }
    }

    private func reapChildren() {
        var exited: [ProcessIdentity] = []
        defer { exited.forEach(workerExited) }
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            guard pid > 0 else { return }
            guard let worker = workers.removeValue(forKey: pid) else { continue }
            // A worker that died before its identity could be read had run nothing.
            if let identity = worker.identity { exited.append(identity) }
            let signaled = status & 0x7f
            var fields: Logger.Metadata = ["worker_pid": .stringConvertible(Int(pid)), "slot": .stringConvertible(worker.slot)]
            if signaled != 0 {
                fields["signal"] = .stringConvertible(Int(signaled))
            } else {
                fields["exit_code"] = .stringConvertible(Int((status >> 8) & 0xff))
            }
            if stopDeadline != nil || worker.retiring {
                processLog.info("worker exited", metadata: fields)
            } else if signaled == 0 && (status >> 8) & 0xff == 0 {
                processLog.info("worker recycled after max requests, restarting", metadata: fields)
                spawn(slot: worker.slot)
            } else {
                processLog.error("worker died, restarting", metadata: fields)  // a crash or a kill
                spawn(slot: worker.slot)
            }
        }
    }

    private func reload() {
        guard stopDeadline == nil else { return }
        processLog.info("reloading workers")
        let old = Array(workers.keys)
        for pid in old { workers[pid]?.retiring = true }
        // New workers accept on the same socket before the old ones stop, so nothing is refused.
        for slot in 0..<settings.workers { spawn(slot: slot) }
        for pid in old { kill(pid, SIGTERM) }
    }

    private func beginStop(signal number: Int32) {
        guard stopDeadline == nil else { return }
        processLog.info("stopping", metadata: ["signal": .stringConvertible(Int(number)), "grace_seconds": .stringConvertible(settings.graceSeconds)])
        stopDeadline = Date().addingTimeInterval(TimeInterval(settings.graceSeconds))
        for pid in workers.keys { kill(pid, SIGTERM) }
    }

    private func finish() -> Never {
        close(listenSocket)
        unlink(settings.socketPath)
        processLog.info("pool stopped")
        exit(0)
    }
}
