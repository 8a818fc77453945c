import Foundation
import PriviaSupport
import Testing
@testable import PriviaCore

@Suite struct PasswordHasherTests {
    let hasher = PasswordHasher(iterations: 1000)

    @Test func aHashVerifiesOnlyItsOwnPassword() {
        let stored = hasher.hash("correct horse")
        #expect(stored.hasPrefix("pbkdf2_sha256$1000$"))
        #expect(hasher.verify("correct horse", against: stored) == .match(needsRehash: false))
        #expect(hasher.verify("correct horsE", against: stored) == .mismatch)
        #expect(hasher.hash("correct horse") != stored, "each hash has its own salt")
    }

    @Test func aCheaperHashStillVerifiesAndAsksToBeRehashed() {
        let old = PasswordHasher(iterations: 500).hash("pw-12345678")
        #expect(hasher.verify("pw-12345678", against: old) == .match(needsRehash: true))
    }

    @Test func privisLegacyFormatVerifies() {
        // Privia's Python backend: salt as hex text, used as its ASCII bytes; 100,000 rounds.
        let salt = "0123456789abcdef0123456789abcdef"
        let digest = Crypto.pbkdf2SHA256(password: Array("test1234".utf8), salt: Array(salt.utf8), iterations: 100_000)
        let stored = salt + "$" + digest.hex
        #expect(hasher.verify("test1234", against: stored) == .match(needsRehash: true))
        #expect(hasher.verify("test12345", against: stored) == .mismatch)
    }

    @Test func malformedHashesNeverMatch() {
        for stored in ["", "$", "pbkdf2_sha256$x$00$00", "pbkdf2_sha256$10$zz$00", "abc"] {
            #expect(hasher.verify("anything", against: stored) == .mismatch)
        }
    }
}

@Suite struct AccessTokenTests {
    let signer = AccessTokenSigner(secretKey: String(repeating: "k", count: 32))

    @Test func aFreshTokenVerifiesWithItsClaims() throws {
        let (token, claims) = signer.issue(subject: "user-1", email: "a@b.co", now: 1000)
        let verified = try #require(signer.verify(token, now: 1001))
        #expect(verified == claims)
        #expect(claims.expiresAt == 1000 + 24 * 3600)
        #expect(claims.tokenID.count == 32)
    }

    @Test func expiredTamperedOrForeignTokensFail() {
        let (token, _) = signer.issue(subject: "user-1", email: "a@b.co", now: 1000)
        #expect(signer.verify(token, now: 1000 + 24 * 3600) == nil)
        var tampered = Array(token)
        tampered[tampered.count - 3] = tampered[tampered.count - 3] == "A" ? "B" : "A"
        #expect(signer.verify(String(tampered), now: 1001) == nil)
        let other = AccessTokenSigner(secretKey: String(repeating: "x", count: 32))
        #expect(other.verify(token, now: 1001) == nil)
    }

    @Test func theNoneAlgorithmIsRefused() {
        let header = Base64URL.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8))
        let payload = Base64URL.encode(Array(#"{"sub":"user-1","exp":99999999999}"#.utf8))
        #expect(signer.verify("\(header).\(payload).", now: 1) == nil)
    }
}

@Suite struct ConfigurationTests {
    @Test func productionRequiresAStrongSecretKey() throws {
        let base = ["PRIVIA_ENV": "production", "PRIVIA_DATA_DIR": "/tmp/privia-config-test"]
        #expect(throws: ConfigurationError.self) { try Configuration.fromEnvironment(base) }
        #expect(throws: ConfigurationError.self) { try Configuration.fromEnvironment(base.merging(["PRIVIA_SECRET_KEY": "short"]) { $1 }) }
        #expect(throws: ConfigurationError.self) { try Configuration.fromEnvironment(base.merging(["PRIVIA_SECRET_KEY": "changeme"]) { $1 }) }
        let strong = String(repeating: "ab", count: 20)
        #expect(try Configuration.fromEnvironment(base.merging(["PRIVIA_SECRET_KEY": strong]) { $1 }).secretKey == strong)
    }

    @Test func developmentKeepsAGeneratedKeyInTheDataDirectory() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(newID())").path
        let first = try Configuration.fromEnvironment(["PRIVIA_DATA_DIR": dir]).secretKey
        let second = try Configuration.fromEnvironment(["PRIVIA_DATA_DIR": dir]).secretKey
        #expect(first.count == 64 && first == second)
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/secret_key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func badNumbersAreRefusedWithTheVariableName() {
        #expect { try Configuration.fromEnvironment(["PRIVIA_WORKERS": "lots", "PRIVIA_DATA_DIR": "/tmp/privia-config-test"]) }
            throws: { "\($0)".contains("PRIVIA_WORKERS") }
    }

    /// One worker by default, and about four working threads per core shared among the workers:
    /// an operator who raises PRIVIA_WORKERS gets fewer per worker, not more in all.
    @Test func activeThreadsFollowTheCoresAndTheWorkers() throws {
        let base = ["PRIVIA_DATA_DIR": "/tmp/privia-config-test"]
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let defaults = try Configuration.fromEnvironment(base)
        #expect(defaults.workers == 1)
        #expect(defaults.activeThreads == max(2, 4 * cores))
        let two = try Configuration.fromEnvironment(base.merging(["PRIVIA_WORKERS": "2"]) { $1 })
        #expect(two.activeThreads == max(2, 2 * cores))
        #expect(Configuration.defaultActiveThreads(workers: 1, cores: 2) == 8)
        #expect(Configuration.defaultActiveThreads(workers: 2, cores: 2) == 4)
        #expect(Configuration.defaultActiveThreads(workers: 16, cores: 2) == 2)
        let set = try Configuration.fromEnvironment(base.merging(["PRIVIA_ACTIVE_THREADS": "3"]) { $1 })
        #expect(set.activeThreads == 3)
    }
}
