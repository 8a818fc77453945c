import Foundation

/// Callers whose token this process has checked against the database (not revoked, the user
/// still there), so the next request with the same token skips that query.
///
/// An entry counts only while the accounts epoch has not moved since it was checked (a
/// sign-out in any process moves it) and for at most `lifetime`, which bounds how long a
/// change made behind Privia's back, such as a user deleted with the sqlite3 shell, goes
/// unseen. Refusals are not kept: they are rare and should stay cheap to change.
final class CheckedCallers: @unchecked Sendable {
    private struct Entry {
        var caller: AuthenticatedUser
        var epoch: UInt64
        var checkedAt: ContinuousClock.Instant
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private let capacity: Int
    let lifetime: Duration

    init(capacity: Int = 10_000, lifetime: Duration = .seconds(1)) {
        self.capacity = capacity
        self.lifetime = lifetime
    }

    func caller(for token: String, epoch: UInt64) -> AuthenticatedUser? {
        guard let entry = lock.withLock({ entries[token] }),
              entry.epoch == epoch, ContinuousClock.now - entry.checkedAt < lifetime
        else { return nil }
        return entry.caller
    }

    /// `epoch` is the value read before the database was asked.
    func remember(_ caller: AuthenticatedUser, for token: String, epoch: UInt64, checkedAt: ContinuousClock.Instant) {
        lock.withLock {
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[token] = Entry(caller: caller, epoch: epoch, checkedAt: checkedAt)
        }
    }
}
