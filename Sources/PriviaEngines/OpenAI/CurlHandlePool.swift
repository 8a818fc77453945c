import CCurl
import Foundation
import Synchronization

/// libcurl handles kept from one transfer to the next, so a chat turn reuses the connection an
/// earlier turn left open to the same provider instead of paying a new TCP and TLS handshake.
///
/// A connection lives in the multi handle's connection cache, so the pool keeps easy and multi
/// handles in pairs. It is shared by every thread of a process rather than kept per thread: the
/// pool's threads take turns accepting (leader/follower), so a user's next turn usually lands on
/// another thread, which would hold a connection of its own. Pairs are handed out most recently
/// used first, so sequential turns keep using one warm connection, and the pool grows to the
/// number of transfers that ran at once. A pair left idle longer than `idleLifetimeSeconds` is
/// freed, its connection with it: libcurl would not reuse that connection anyway.
///
/// A pair is used by one thread at a time, which is all libcurl asks of its handles.
final class CurlHandlePool: Sendable {
    /// One easy handle and the multi handle that drives it (and caches its connections).
    final class Handles: @unchecked Sendable {
        let easy: UnsafeMutableRawPointer
        let multi: UnsafeMutableRawPointer
        fileprivate var idleSince = ContinuousClock.now

        fileprivate init(easy: UnsafeMutableRawPointer, multi: UnsafeMutableRawPointer) {
            self.easy = easy
            self.multi = multi
        }

        fileprivate func cleanup() {
            curl_easy_cleanup(easy)
            curl_multi_cleanup(multi)  // closes the connections it cached
        }
    }

    /// libcurl's default for `CURLOPT_MAXAGE_CONN`, which `StreamingPost` sets to this explicitly.
    static let idleLifetimeSeconds = 118

    /// The pool of the process; tests make their own.
    static let shared = CurlHandlePool()

    /// libcurl's global initialisation, once per process, before any handle exists.
    private static let globalInit: Bool = privia_curl_global_init_default() == CURLE_OK

    /// Oldest-idle first; `take` pops from the end.
    private let idle = Mutex<[Handles]>([])

    init() {}

    /// The most recently used idle pair, or a new one; nil when libcurl cannot start.
    func take() -> Handles? {
        if let handles = idle.withLock({ $0.popLast() }) { return handles }
        guard Self.globalInit, let easy = curl_easy_init() else { return nil }
        guard let multi = curl_multi_init() else {
            curl_easy_cleanup(easy)
            return nil
        }
        return Handles(easy: easy, multi: multi)
    }

    /// Returns a pair whose transfer was removed from its multi handle, to serve the next one.
    /// Its options are cleared now: they point at buffers of the transfer that ended.
    func giveBack(_ handles: Handles) {
        curl_easy_reset(handles.easy)  // keeps the connection cache, the DNS and TLS session caches
        let now = ContinuousClock.now
        handles.idleSince = now
        let expired = idle.withLock { idle -> [Handles] in
            idle.append(handles)
            let stale = idle.prefix { now - $0.idleSince > .seconds(Self.idleLifetimeSeconds) }
            idle.removeFirst(stale.count)
            return Array(stale)
        }
        for handles in expired { handles.cleanup() }
    }

    /// Frees a pair instead of keeping it (its multi handle failed).
    func discard(_ handles: Handles) {
        handles.cleanup()
    }
}
