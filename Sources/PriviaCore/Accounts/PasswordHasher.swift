import PriviaSupport

/// Password hashing with PBKDF2-HMAC-SHA256 from OpenSSL, in a self-describing format
/// `pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>` so the cost can rise later: a hash made
/// with fewer iterations (or in Privia's legacy format) verifies, then reports `needsRehash`.
public struct PasswordHasher: Sendable {
    /// OWASP's 2023 figure for PBKDF2-HMAC-SHA256.
    public static let defaultIterations = 600_000
    /// Privia's Python backend stored `salt$hex` with 100,000 rounds, the salt used as text.
    static let legacyIterations = 100_000

    public let iterations: Int

    public init(iterations: Int = PasswordHasher.defaultIterations) {
        self.iterations = iterations
    }

    public func hash(_ password: String) -> String {
        let salt = Crypto.randomBytes(16)
        let derived = Self.derive(password: Array(password.utf8), salt: salt, iterations: iterations)
        return "pbkdf2_sha256$\(iterations)$\(salt.hex)$\(derived.hex)"
    }

    public enum Verdict: Equatable, Sendable {
        case mismatch
        case match(needsRehash: Bool)
    }

    public func verify(_ password: String, against stored: String) -> Verdict {
        let parts = stored.split(separator: "$", omittingEmptySubsequences: false)
        let passwordBytes = Array(password.utf8)
        if parts.count == 4, parts[0] == "pbkdf2_sha256", let rounds = Int(parts[1]), rounds > 0,
           let salt = [UInt8](hex: String(parts[2])), let expected = [UInt8](hex: String(parts[3])), !expected.isEmpty {
            let derived = Self.derive(password: passwordBytes, salt: salt, iterations: rounds, length: expected.count)
            return Crypto.constantTimeEquals(derived, expected) ? .match(needsRehash: rounds < iterations) : .mismatch
        }
        if parts.count == 2, let expected = [UInt8](hex: String(parts[1])), !expected.isEmpty {
            let derived = Self.derive(password: passwordBytes, salt: Array(parts[0].utf8),
                                              iterations: Self.legacyIterations, length: expected.count)
            return Crypto.constantTimeEquals(derived, expected) ? .match(needsRehash: true) : .mismatch
        }
        return .mismatch
    }

    /// Spends the same time as a real verification, for a login whose email is unknown,
    /// so response time does not reveal which emails have accounts.
    public func burnEquivalentTime(_ password: String) {
        _ = Self.derive(password: Array(password.utf8), salt: Self.dummySalt, iterations: iterations)
    }

    private static let dummySalt = Crypto.randomBytes(16)

    /// PBKDF2 takes a few hundred milliseconds of CPU by design: the thread steps aside from
    /// the active threads meanwhile, so sign-ins do not hold up short requests.
    private static func derive(password: [UInt8], salt: [UInt8], iterations: Int, length: Int = 32) -> [UInt8] {
        ActiveThreads.stepAside { Crypto.pbkdf2SHA256(password: password, salt: salt, iterations: iterations, length: length) }
    }
}
