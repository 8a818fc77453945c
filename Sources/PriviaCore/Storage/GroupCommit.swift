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
///
/// Between processes, a batch first takes the writer's turn (`WriterTurn`), so a process
/// waiting to write is woken the moment the other's commit is done. The writer connection
/// does not checkpoint inside its COMMIT: a leader whose own job is done checkpoints on a
/// connection of its own once the WAL holds 1,000 frames, after passing the lead on, so the
/// write-back and its fsync hold up neither the next batch nor the other processes.
final class GroupCommit: @unchecked Sendable {
    /// Enough to share the lock's cost, few enough that one batch holds the lock briefly.
    static let maxBatch = 64

    private final class Job {
        /// Cleared as soon as it has run: `withoutActuallyEscaping` checks that nothing kept it.
        var work: ((SQLiteConnection) throws -> Void)?
        var failure: Error?
        var done = false
        let wakeup = DispatchSemaphore(value: 0)
        /// Where its thread held a place among the active threads: it is woken with one.
        var place: ActiveThreads?
        init(_ work: @escaping (SQLiteConnection) throws -> Void) { self.work = work }
    }

    /// SQLite's own threshold for its automatic checkpoint, in WAL frames (pages).
    static let checkpointFrames = 1000

    private let lock = NSLock()
    private var queue: [Job] = []
    private var leading = false
    private let databasePath: String
    // Opened at the first write: a process that only reads never opens them.
    private var connection: SQLiteConnection?
    private var turn: WriterTurn?
    /// Its own connection, so a checkpoint runs while the next batch writes.
    private var checkpointer: SQLiteConnection?
    private var checkpointing = false

    init(databasePath: String) {
        self.databasePath = databasePath
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
            job.place = ActiveThreads.current
            lock.lock()
            queue.append(job)
            let follows = leading
            leading = true
            lock.unlock()
            // Woken once: either the job is done, or it is the oldest one queued and now leads.
            if follows {
                // The place goes to other requests while this one waits for its batch.
                job.place?.setAside()
                job.wakeup.wait()
            }
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

        let walFrames = run(batch)
        for job in batch {
            job.done = true
            if job !== own { wake(job) }
        }

        lock.lock()
        if queue.isEmpty {
            leading = false
            lock.unlock()
        } else if own.done {
            let next = queue[0]
            lock.unlock()
            wake(next)
        } else {
            lock.unlock()
        }
        if own.done && walFrames >= Self.checkpointFrames { ActiveThreads.stepAside(checkpoint) }
    }

    private func wake(_ job: Job) {
        if let place = job.place { place.wake(job.wakeup) } else { job.wakeup.signal() }
    }

    /// Copies the WAL back into the database on the checkpointer connection, outside any batch
    /// and any writer's turn, while the next batch goes on; one thread at a time.
    private func checkpoint() {
        let mine = lock.withLock {
            if checkpointing { return false }
            checkpointing = true
            return true
        }
        guard mine else { return }
        defer { lock.withLock { checkpointing = false } }
        if checkpointer == nil { checkpointer = try? SQLiteConnection(path: databasePath) }
        checkpointer?.checkpoint()
    }

    private func take(_ turn: WriterTurn?, _ body: () throws -> Void) rethrows {
        if let turn { try turn.take(body) } else { try body() }
    }

    /// Runs a batch in one transaction; returns the frames in the WAL after its commit.
    private func run(_ batch: [Job]) -> Int {
        do {
            if connection == nil {
                let opened = try SQLiteConnection(path: databasePath)
                try opened.checkpointsByHand()
                connection = opened
                turn = WriterTurn(databasePath: databasePath)
            }
            let connection = connection!
            try take(turn) { try connection.write {
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
            } }
        } catch {
            for job in batch where job.failure == nil {
                job.work = nil
                job.failure = error
            }
        }
        return connection?.walFrames ?? 0
    }
}
