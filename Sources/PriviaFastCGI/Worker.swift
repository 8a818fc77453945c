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
public final class Worker: @unchecked Sendable {
    private let listenSocket: Int32
    private let threadCount: Int
    private let activeThreads: Int
    private let responder: HTTPResponder
    private let maxRequests: Int
    /// A pthread mutex (NSLock): threads waiting for it sleep in the kernel. The standard library's
    /// Mutex spun in user space first, which with hundreds of threads waiting cost the pool CPU.
    private let acceptLock = NSLock()
    private let stopping = Atomic<Bool>(false)
    private let served = Atomic<Int>(0)
    private let pid = getpid()
    static let acceptPollMilliseconds: Int32 = 200

    public init(listenSocket: Int32, threads: Int, activeThreads: Int, maxRequests: Int, responder: HTTPResponder) {
        self.listenSocket = listenSocket
        self.threadCount = threads
        self.activeThreads = activeThreads
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

        var threads: [pthread_t] = []
        for index in 0..<threadCount {
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            pthread_attr_setstacksize(&attributes, 512 * 1024)
            var thread = pthread_t()
            let context = Unmanaged.passRetained(self).toOpaque()
            let rc = pthread_create(&thread, &attributes, { context in
                let worker = Unmanaged<Worker>.fromOpaque(context!).takeRetainedValue()
                worker.serveLoop()
                return nil
            }, context)
            pthread_attr_destroy(&attributes)
            if rc != 0 {
                processLog.error("cannot start worker thread", metadata: ["index": .stringConvertible(index), "errno": .stringConvertible(Int(rc))])
                break
            }
            threads.append(thread)
        }
        processLog.info("worker ready", metadata: ["threads": .stringConvertible(threads.count), "active_threads": .stringConvertible(activeThreads)])

        // Wait for a stop signal, or for a thread to notice max_requests was reached.
        var timeout = timespec(tv_sec: 0, tv_nsec: 250_000_000)
        while !stopping.load(ordering: .acquiring) {
            let number = sigtimedwait(&stopSignals, nil, &timeout)
            if number > 0 { stopping.store(true, ordering: .releasing) }
        }
        processLog.info("worker draining")
        for thread in threads { pthread_join(thread, nil) }
        processLog.info("worker stopped", metadata: ["served": .stringConvertible(served.load(ordering: .relaxed))])
        exit(0)
    }

    private func serveLoop() {
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        defer { request.deallocate() }
        FCGX_InitRequest(request, listenSocket, 0)
        while true {
            guard accept(request) else { break }
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
    }

    /// Waits for the next connection as the leader; false once the worker is stopping.
    private func accept(_ request: UnsafeMutablePointer<FCGX_Request>) -> Bool {
        // A thread keeps its place among the active threads from one request to the next (see
        // ActiveThreads), but not while it waits for the accept lock: its holder may be polling
        // an idle socket.
        if !acceptLock.try() {
            ActiveThreads.process.end()
            acceptLock.lock()
        }
        defer { acceptLock.unlock() }
        return acceptAsLeader(request)
    }

    /// The accept loop of the thread holding the accept lock.
    private func acceptAsLeader(_ request: UnsafeMutablePointer<FCGX_Request>) -> Bool {
        while !stopping.load(ordering: .acquiring) {
            // Accept first and wait only when nothing is queued: under load a connection is
            // usually waiting, and the poll before it was one more system call per request.
            ActiveThreads.process.begin()
            let rc = FCGX_Accept_r(request)
            if rc >= 0 { return true }
            ActiveThreads.process.end()
            // -EAGAIN: nothing queued, or another process took that connection. Anything else: log and go on.
            if rc != -EAGAIN && rc != -EWOULDBLOCK && rc != -EINTR {
                processLog.error("accept failed", metadata: ["rc": .stringConvertible(Int(rc))])
                usleep(10_000)
                continue
            }
            var descriptor = pollfd(fd: listenSocket, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, Self.acceptPollMilliseconds)
        }
        // Stopping: the serve loop ends here, so no place is kept past it.
        ActiveThreads.process.end()
        return false
    }
}
