import Foundation

/// Tokens whose signature this process already checked, with their claims.
///
/// A signature check always gives the same answer for the same token, so it is done once per
/// token rather than on every request (OpenSSL 3's one-shot HMAC looks up the algorithm each
/// time). Only the signature is remembered: expiry is checked on every request, revocation
/// and the user's existence by `AccountService.authenticate` through `CheckedCallers`.
final class VerifiedTokens: @unchecked Sendable {
    private let lock = NSLock()
    private var claims: [String: TokenClaims] = [:]
    private let capacity: Int

    init(capacity: Int = 10_000) { self.capacity = capacity }

    /// The claims of `token`, verifying it with `verify` the first time it is seen.
    func claims(of token: String, verify: (String) -> TokenClaims?) -> TokenClaims? {
        if let known = lock.withLock({ claims[token] }) { return known }
        guard let verified = verify(token) else { return nil }
        lock.withLock {
            if claims.count >= capacity { claims.removeAll(keepingCapacity: true) }
            claims[token] = verified
        }
        return verified
    }
}
