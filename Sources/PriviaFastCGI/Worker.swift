import CFastCGI
import Foundation
import Logging
import PriviaCore
import PriviaHTTP
import Synchronization

/// One worker process of the pool: M threads that take turns accepting on the shared
/// FastCGI socket and each serve one request at a time.
///
/// Accepting is leader/follower: one thread at a time accepts on the socket, waiting with
/// `poll` when nothing is queued (so it notices a stop within `acceptPollMilliseconds`),
/// while the others wait on a mutex. That
/// avoids a thundering herd of hundreds of threads per connection and needs no signals to
/// stop: the listening socket is non-blocking, so a thread that loses the race to another
/// process gets EAGAIN back from `FCGX_Accept_r` instead of blocking.
///
/// At most `activeThreads` of them work on requests at once (`ActiveThreads`): a thread takes
/// a place before it accepts and keeps it for its next request.
///
/// Threads start as they are needed, like php-fpm's `pm = dynamic` does with processes: a
/// worker starts with `activeThreads` of them and adds one whenever a thread takes a request
/// and leaves fewer than `spareThreads` waiting to accept, up to `threadCount` (each held
/// stream keeps one). The spare ones accept the next requests of a burst while the new ones
/// start, instead of each request waiting for a thread to be made and scheduled. A
/// thread beyond the first `activeThreads` that has waited `threadIdleSeconds` for a request
/// ends. Every thread that ever ran keeps its touched stack and its allocator cache, and
/// leader/follower hands requests to all the threads in turn, so a worker that started all
/// `threadCount` at once held them all resident even when a few were enough.
public final class Worker: @unchecked Sendable {
    private let listenSocket: Int32
    private let threadCount: Int
    private let activeThreads: Int
    private let responder: HTTPResponder
    private let maxRequests: Int
    private let threadIdleNanoseconds: UInt64
    /// A pthread mutex (NSLock): threads waiting for it sleep in the kernel. The standard library's
    /// Mutex spun in user space first, which with hundreds of threads waiting cost the pool CPU.
    private let acceptLock = NSLock()
    private let stopping = Atomic<Bool>(false)
    private let served = Atomic<Int>(0)
    /// Threads running, and how many of them wait to accept a request (leader and followers).
    private let alive = Atomic<Int>(0)
    private let waiting = Atomic<Int>(0)
    /// Threads kept waiting to accept while more may start (php-fpm's `pm.min_spare_servers`).
    private var spareThreads: Int { max(2, activeThreads / 2) }
    /// Signalled by the last thread to end once the worker is stopping.
    private let drained = DispatchSemaphore(value: 0)
    private let pid = getpid()
    static let acceptPollMilliseconds: Int32 = 200

    public init(listenSocket: Int32, threads: Int, activeThreads: Int, threadIdleSeconds: Int, maxRequests: Int,
                responder: HTTPResponder) {
        self.listenSocket = listenSocket
        self.threadCount = threads
        self.activeThreads = activeThreads
        self.threadIdleNanoseconds = UInt64(threadIdleSeconds) * 1_000_000_000
        self.maxRequests = maxRequests
        self.responder = responder
    }

    /// Serves until SIGTERM, SIGINT, SIGQUIT or SIGHUP, then lets in-flight requests finish.
    public func run() -> Never {
        // libfcgi ends each request by shutting its side of the connection down and reading
        // until nginx closes too, for up to 2 s: the thread, still holding its place among
        // the active threads, waits out a round trip through nginx before its next request.
        // nginx sends nothing after a request it has had the end of (fastcgi_keep_conn off),
        // so close at once.
        // OS_LibInit reads this in FCGX_Init; an operator's own value is kept.
        setenv("LIBFCGI_OS_CLOSE_POLL_TIMEOUT", "0", 0)
        FCGX_Init()
        // Our own handling replaces libfcgi's (installed by FCGX_Init where the default was):
        // SIGPIPE ignored, so a client leaving is a failed write, not a dead process.
        signal(SIGPIPE, SIG_IGN)
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        for number in [SIGTERM, SIGINT, SIGQUIT, SIGHUP] { sigaddset(&stopSignals, number) }
        // Block them before starting threads so only this thread receives them (threads inherit the mask).
        pthread_sigmask(SIG_BLOCK, &stopSignals, nil)
        ActiveThreads.process.setLimit(activeThreads)

        for _ in 0..<min(threadCount, activeThreads) {
            guard startThread() else { break }
        }
        guard alive.load(ordering: .acquiring) > 0 else {
            processLog.error("cannot start any worker thread")
            exit(1)
        }
        processLog.info("worker ready", metadata: ["threads": .stringConvertible(alive.load(ordering: .relaxed)),
                                                   "max_threads": .stringConvertible(threadCount),
                                                   "active_threads": .stringConvertible(activeThreads)])

        // Wait for a stop signal, or for a thread to notice max_requests was reached.
        var timeout = timespec(tv_sec: 0, tv_nsec: 250_000_000)
        while !stopping.load(ordering: .acquiring) {
            let number = sigtimedwait(&stopSignals, nil, &timeout)
            if number > 0 { stopping.store(true, ordering: .releasing) }
        }
        processLog.info("worker draining")
        drained.wait()
        processLog.info("worker stopped", metadata: ["served": .stringConvertible(served.load(ordering: .relaxed))])
        exit(0)
    }

    /// Starts one more serving thread, unless `threadCount` run already. Detached: the drain
    /// waits for `alive` to reach zero instead of joining.
    @discardableResult
    private func startThread() -> Bool {
        var count = alive.load(ordering: .acquiring)
        while true {
            guard count < threadCount, !stopping.load(ordering: .acquiring) else { return false }
            let (exchanged, original) = alive.compareExchange(expected: count, desired: count + 1,
                                                              ordering: .acquiringAndReleasing)
            if exchanged { break }
            count = original
        }
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setstacksize(&attributes, 512 * 1024)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, &attributes, { context in
            Unmanaged<Worker>.fromOpaque(context!).takeRetainedValue().serveLoop()
            return nil
        }, context)
        pthread_attr_destroy(&attributes)
        guard rc == 0 else {
            Unmanaged<Worker>.fromOpaque(context).release()
            threadEnded()
            processLog.error("cannot start worker thread", metadata: ["threads": .stringConvertible(alive.load(ordering: .relaxed)),
                                                                      "errno": .stringConvertible(Int(rc))])
            return false
        }
        return true
    }

    /// Takes an ending thread out of the count; the last one out of a stopping worker lets the drain end.
    private func threadEnded() {
        if alive.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 && stopping.load(ordering: .acquiring) {
            drained.signal()
        }
    }

    /// Whether a thread that has waited for a request since `idleSince`, with nothing queued,
    /// ends now: it has waited `threadIdleSeconds` and more than `activeThreads` run. It is
    /// taken out of the count here, at once, so two idle threads cannot both leave fewer.
    private func retires(idleSince: UInt64) -> Bool {
        guard DispatchTime.now().uptimeNanoseconds - idleSince >= threadIdleNanoseconds else { return false }
        var count = alive.load(ordering: .acquiring)
        while count > activeThreads {
            let (exchanged, original) = alive.compareExchange(expected: count, desired: count - 1,
                                                              ordering: .acquiringAndReleasing)
            if exchanged { return true }
            count = original
        }
        return false
    }

    private enum Accepted { case request, stopping, idle }

    /// Names the calling thread privia-serve, as `top -H` and /proc/PID/task/TID/comm show it
    /// (what pthread_setname_np does; Glibc's Swift module does not declare it).
    private static func nameThread() {
        let fd = open("/proc/thread-self/comm", O_WRONLY)
        guard fd >= 0 else { return }
        _ = "privia-serve".withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    private func serveLoop() {
        Self.nameThread()
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        defer { request.deallocate() }
        FCGX_InitRequest(request, listenSocket, 0)
        var accepted = Accepted.request
        while true {
            waiting.add(1, ordering: .acquiringAndReleasing)
            accepted = accept(request)
            // Too few threads are left waiting to accept: another takes this one's place.
            if waiting.subtract(1, ordering: .acquiringAndReleasing).newValue < spareThreads && accepted == .request {
                startThread()
            }
            guard accepted == .request else { break }
            let started = DispatchTime.now().uptimeNanoseconds
            let exchange = FastCGIExchange(request)
            let httpRequest = exchange.readRequest()
            let response = responder.respond(to: httpRequest)
            exchange.write(response)
            FCGX_Finish_r(request)
            ActiveThreads.process.handOverIfAwaited()
            RequestLog.write(httpRequest, response, started: started, pid: pid)
            let count = served.add(1, ordering: .relaxed).newValue
            if maxRequests > 0 && count >= maxRequests { stopping.store(true, ordering: .releasing) }
        }
        FCGX_Free(request, 1)
        if accepted == .stopping { threadEnded() }  // an idle thread was taken out of the count in `retires`
    }

    /// Waits for the next connection as the leader: `.request` with one, `.stopping` once the
    /// worker stops, `.idle` when this thread has waited long enough to end (`retires`).
    private func accept(_ request: UnsafeMutablePointer<FCGX_Request>) -> Accepted {
        let idleSince = DispatchTime.now().uptimeNanoseconds
        // A thread keeps its place among the active threads from one request to the next (see
        // ActiveThreads), but not while it waits for the accept lock: its holder may be polling
        // an idle socket.
        if !acceptLock.try() {
            ActiveThreads.process.end()
            acceptLock.lock()
        }
        defer { acceptLock.unlock() }
        return acceptAsLeader(request, idleSince: idleSince)
    }

    /// The accept loop of the thread holding the accept lock.
    private func acceptAsLeader(_ request: UnsafeMutablePointer<FCGX_Request>, idleSince: UInt64) -> Accepted {
        while !stopping.load(ordering: .acquiring) {
            // Accept first and wait only when nothing is queued: under load a connection is
            // usually waiting, and the poll before it was one more system call per request.
            ActiveThreads.process.begin()
            let rc = FCGX_Accept_r(request)
            if rc >= 0 { return .request }
            ActiveThreads.process.end()
            // -EAGAIN: nothing queued, or another process took that connection. Anything else: log and go on.
            if rc != -EAGAIN && rc != -EWOULDBLOCK && rc != -EINTR {
                processLog.error("accept failed", metadata: ["rc": .stringConvertible(Int(rc))])
                usleep(10_000)
                continue
            }
            // Nothing queued: a thread that has waited long enough ends here, and the next one
            // waiting for the lock, if it has waited as long, ends right after it.
            if retires(idleSince: idleSince) { return .idle }
            var descriptor = pollfd(fd: listenSocket, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, Self.acceptPollMilliseconds)
        }
        // Stopping: the serve loop ends here, so no place is kept past it.
        ActiveThreads.process.end()
        return .stopping
    }
}
