import Foundation

/// How many of a process's threads work on requests at once.
///
/// A pool worker has hundreds of threads so that held streams and writes waiting for their
/// batch each keep one. But when sixty-four requests in flight all work at once, the kernel
/// shares two cores among sixty-four threads and nginx's: each request gets a slice, is
/// preempted, and waits for its next slice behind all the others, so a short request now and
/// then takes many times its own work. Here at most `limit` threads work at once;
/// the others wait in line, and requests finish in about the order they came.
///
/// A thread takes a place with `begin()` before it accepts a request and keeps it for the
/// next one (`handOverIfAwaited()`) until it has nothing to accept (`end()`). While it waits on
/// something (its write's batch, a checkpoint, a password hash) it steps aside, and comes back
/// ahead of any new request. A turn that waits on a model or holds a stream leaves for good
/// (`leave()`): it is no longer short work.
///
/// Nothing depends on it for correctness: a thread that holds no place (the relay's, a test's,
/// the CLI's, a stream's) runs as if there were no limit, and stepping aside or leaving does
/// nothing for it.
public final class ActiveThreads: @unchecked Sendable {
    /// The process's limiter; unlimited until the pool's worker sets a limit.
    public static let process = ActiveThreads()

    private let lock = NSLock()
    private var limit: Int
    private var working = 0
    /// Waiting for a place, first come first served: threads coming back from a wait, then
    /// threads about to accept a new request. A freed place is handed to the first of them.
    private var returning: [DispatchSemaphore] = []
    private var starting: [DispatchSemaphore] = []

    public init(limit: Int = .max) {
        self.limit = max(1, limit)
    }

    /// Sets how many threads may work at once; before any thread has begun.
    public func setLimit(_ limit: Int) {
        lock.withLock { self.limit = max(1, limit) }
    }

    /// Threads holding a place now.
    public var workingNow: Int { lock.withLock { working } }

    /// Threads waiting for a place now: coming back from a wait, and about to accept a request.
    var waitingNow: (returning: Int, starting: Int) { lock.withLock { (returning.count, starting.count) } }

    // MARK: The current thread

    /// The limiter whose place the current thread holds, if any (a thread-specific value).
    public static var current: ActiveThreads? {
        pthread_getspecific(placeKey).map { Unmanaged<ActiveThreads>.fromOpaque($0).takeUnretainedValue() }
    }

    private static let placeKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    private static func setCurrent(_ limiter: ActiveThreads?) {
        pthread_setspecific(placeKey, limiter.map { UnsafeRawPointer(Unmanaged.passUnretained($0).toOpaque()) })
    }

    /// Takes a place before accepting a request: waits while all are taken, behind threads
    /// coming back from a wait. Nothing if the thread holds one already.
    public func begin() {
        guard Self.current == nil else { return }
        take(returning: false)
        Self.setCurrent(self)
    }

    /// Gives the current thread's place back (nothing if it holds none).
    public func end() {
        guard Self.current === self else { return }
        Self.setCurrent(nil)
        release()
    }

    /// Between two requests: the thread keeps its place for the next one, unless a thread
    /// coming back from a wait is waiting for a place; then it hands its own over.
    public func handOverIfAwaited() {
        guard Self.current === self else { return }
        lock.lock()
        guard !returning.isEmpty else {
            lock.unlock()
            return
        }
        let next = returning.removeFirst()
        lock.unlock()
        Self.setCurrent(nil)
        next.signal()
    }

    /// Gives the current thread's place up for the rest of its request: it waits on a model or
    /// holds a stream, and no longer counts as short work.
    public static func leave() {
        current?.end()
    }

    /// Runs `body`, a wait or long work, without the current thread's place, then takes one
    /// again ahead of new requests.
    public static func stepAside<T>(_ body: () throws -> T) rethrows -> T {
        guard let limiter = current else { return try body() }
        limiter.release()
        defer { limiter.take(returning: true) }
        return try body()
    }

    // MARK: Sleeping until another thread says so

    /// For a thread that holds a place and is about to sleep on a semaphore until another
    /// thread wakes it with `wake(_:)`: gives the place up meanwhile. The waker hands it a
    /// place with the wake-up, so the sleeper wakes once, ready to work, instead of waking
    /// only to wait for a place.
    public func setAside() {
        release()
    }

    /// Wakes a thread that set its place aside and sleeps on `wakeup`, with a place: at once
    /// if one is free, else when one is handed over.
    public func wake(_ wakeup: DispatchSemaphore) {
        lock.lock()
        if working >= limit {
            returning.append(wakeup)
            lock.unlock()
            return
        }
        working += 1
        lock.unlock()
        wakeup.signal()
    }

    // MARK: Places

    private func take(returning isReturning: Bool) {
        lock.lock()
        // A place freed while others wait is handed over in `release`, so a free place means
        // that nobody waits for one.
        if working < limit {
            working += 1
            lock.unlock()
            return
        }
        let wakeup = DispatchSemaphore(value: 0)
        if isReturning { returning.append(wakeup) } else { starting.append(wakeup) }
        lock.unlock()
        wakeup.wait()
    }

    /// Hands the place to the first thread coming back, else to the first starting, else frees it.
    private func release() {
        lock.lock()
        let next = !returning.isEmpty ? returning.removeFirst() : !starting.isEmpty ? starting.removeFirst() : nil
        if next == nil { working -= 1 }
        lock.unlock()
        next?.signal()
    }
}
