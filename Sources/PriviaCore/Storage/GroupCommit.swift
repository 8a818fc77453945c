import Foundation

/// Group commit: the write transactions a process's threads ask for at the same moment run
/// together as one SQLite transaction, each inside its own savepoint.
///
/// Every commit appends each page it changed to the WAL, and every transaction first waits for
/// the one cross-process write lock. Sixty-four threads committing one chat turn each wrote the
/// same few pages sixty-four times and queued for the lock sixty-four times; a batch writes them
/// once and takes the lock once.
///
/// There is no writer thread. The first caller to find no batch running leads: it takes every
/// queued job, runs them on the one writer connection, commits, wakes their callers, and hands
/// the lead to the oldest job still queued. A job that throws is rolled back to its savepoint
/// and only its caller sees the error; if the transaction itself fails, every job in the batch
/// fails with it and nothing of the batch is kept.
final class GroupCommit: @unchecked Sendable {
    /// Enough to share the lock's cost, few enough that one batch holds the lock briefly.
    static let maxBatch = 64

    private final class Job {
        /// Cleared as soon as it has run: `withoutActuallyEscaping` checks that nothing kept it.
        var work: ((SQLiteConnection) throws -> Void)?
        var failure: Error?
        var done = false
        let wakeup = DispatchSemaphore(value: 0)
        init(_ work: @escaping (SQLiteConnection) throws -> Void) { self.work = work }
    }

    private let lock = NSLock()
    private var queue: [Job] = []
    private var leading = false
    private var connection: SQLiteConnection?
    private let open: () throws -> SQLiteConnection

    /// `open` makes the writer connection, at the first write: a process that only reads never opens it.
    init(open: @escaping () throws -> SQLiteConnection) {
        self.open = open
    }

    /// Jobs waiting for a batch (tests use it to line jobs up behind a running one).
    var queuedJobs: Int {
        lock.lock()
        defer { lock.unlock() }
        return queue.count
    }

    func write<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try withoutActuallyEscaping(body) { body in
            var result: T?
            let job = Job { connection in result = try body(connection) }
            lock.lock()
            queue.append(job)
            let follows = leading
            leading = true
            lock.unlock()
            // Woken once: either the job is done, or it is the oldest one queued and now leads.
            if follows { job.wakeup.wait() }
            while !job.done { lead(job) }
            if let failure = job.failure { throw failure }
            return result!
        }
    }

    /// Runs one batch; then passes the lead on, or keeps it while `own` has not run yet.
    private func lead(_ own: Job) {
        lock.lock()
        let batch = Array(queue.prefix(Self.maxBatch))
        queue.removeFirst(batch.count)
        lock.unlock()

        run(batch)
        for job in batch {
            job.done = true
            if job !== own { job.wakeup.signal() }
        }

        lock.lock()
        if queue.isEmpty {
            leading = false
            lock.unlock()
        } else if own.done {
            let next = queue[0]
            lock.unlock()
            next.wakeup.signal()
        } else {
            lock.unlock()
        }
    }

    private func run(_ batch: [Job]) {
        do {
            if connection == nil { connection = try open() }
            let connection = connection!
            try connection.write {
                for job in batch {
                    let work = job.work!
                    job.work = nil
                    do {
                        // One job alone needs no savepoint: the transaction is its savepoint.
                        if batch.count == 1 { try work(connection) } else { try connection.savepoint { try work(connection) } }
                    } catch {
                        job.failure = error
                        // A job alone rolls the transaction back; so does SQLite after some failures (full disk, I/O).
                        if batch.count == 1 || !connection.isInTransaction { throw error }
                    }
                }
            }
        } catch {
            for job in batch where job.failure == nil {
                job.work = nil
                job.failure = error
            }
        }
    }
}
