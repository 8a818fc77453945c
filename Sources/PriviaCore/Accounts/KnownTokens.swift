import Foundation

/// The tokens this process has seen and what it learned about each, so that most requests
/// check their token with one dictionary lookup.
///
/// - The claims, once the signature checked out. That answer never changes, so it is kept for
///   good (OpenSSL 3's one-shot HMAC looks up the algorithm on every call). Expiry is still
///   checked on every request, by `AccountService.authenticate`.
/// - The caller, once the database said the token is not revoked and its user is there. That
///   counts only while the accounts epoch has not moved since (a sign-out in any process moves
///   it) and for at most `lifetime`, which bounds how long a change made behind Privia's back,
///   such as a user deleted with the sqlite3 shell, goes unseen. Refusals are not kept: they
///   are rare and should stay cheap to change.
final class KnownTokens: @unchecked Sendable {
    /// What the database said, under which epoch and when.
    private struct Check {
        var caller: AuthenticatedUser
        var epoch: UInt64
        var checkedAt: ContinuousClock.Instant
    }

    private struct Entry {
        var claims: TokenClaims
        var check: Check?
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private let capacity: Int
    let lifetime: Duration

    init(capacity: Int = 10_000, lifetime: Duration = .seconds(1)) {
        self.capacity = capacity
        self.lifetime = lifetime
    }

    /// The claims of `token`, verified with `verify` the first time it is seen, and the caller
    /// a check made under `epoch` (nil: no epoch, nothing reused) found behind it, if still good.
    func lookup(_ token: String, epoch: UInt64?, verify: (String) -> TokenClaims?) -> (claims: TokenClaims, caller: AuthenticatedUser?)? {
        if let entry = lock.withLock({ entries[token] }) {
            guard let check = entry.check, check.epoch == epoch, ContinuousClock.now - check.checkedAt < lifetime
            else { return (entry.claims, nil) }
            return (entry.claims, check.caller)
        }
        guard let verified = verify(token) else { return nil }
        store(token, Entry(claims: verified))
        return (verified, nil)
    }

    /// Keeps what the database said about `token`; `epoch` is the value read before it was asked.
    func remember(_ caller: AuthenticatedUser, for token: String, claims: TokenClaims, epoch: UInt64, checkedAt: ContinuousClock.Instant) {
        store(token, Entry(claims: claims, check: Check(caller: caller, epoch: epoch, checkedAt: checkedAt)))
    }

    private func store(_ token: String, _ entry: Entry) {
        lock.withLock {
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[token] = entry
        }
    }
}
