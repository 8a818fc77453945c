import Foundation
import PriviaSupport

/// The claims Privia puts in an access token.
public struct TokenClaims: Equatable, Sendable {
    public var subject: String
    public var email: String
    public var issuedAt: Int
    public var expiresAt: Int
    public var tokenID: String
    /// The browser session (refresh-token family) the token was issued to; nil for a plain sign-in.
    public var sessionID: String?
    /// The user's token generation when it was issued (0 when the token has no `gen`); a token
    /// older than the user's current one was issued before a "sign out everywhere".
    public var generation: Int
}

/// JWT (RFC 7519) access tokens signed with HS256, verified strictly: the header must name
/// HS256 (no `none`, no algorithm switching), the signature is compared in constant time, and
/// the expiry is checked. Whether the user still exists and the token is not revoked is the
/// account store's question.
public struct AccessTokenSigner: Sendable {
    public static let lifetime = 24 * 60 * 60

    private let key: [UInt8]

    public init(secretKey: String) {
        precondition(!secretKey.isEmpty, "a signing key is required")
        key = Array(secretKey.utf8)
    }

    private static let header = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))

    public func issue(subject: String, email: String, now: Int = Int(Date().timeIntervalSince1970),
                      lifetime: Int = Self.lifetime, sessionID: String? = nil, generation: Int = 0) -> (token: String, claims: TokenClaims) {
        let claims = TokenClaims(subject: subject, email: email, issuedAt: now, expiresAt: now + lifetime,
                                 tokenID: Crypto.randomBytes(16).hex, sessionID: sessionID, generation: generation)
        var members: [(String, JSON)] = [
            ("sub", .string(claims.subject)), ("email", .string(claims.email)),
            ("iat", .int(claims.issuedAt)), ("exp", .int(claims.expiresAt)), ("jti", .string(claims.tokenID)),
        ]
        if generation != 0 { members.append(("gen", .int(generation))) }
        if let sessionID { members.append(("sid", .string(sessionID))) }
        let payload = JSON.object(members)
        let signingInput = Self.header + "." + Base64URL.encode(payload.encoded())
        let signature = Crypto.hmacSHA256(key: key, message: Array(signingInput.utf8))
        return (signingInput + "." + Base64URL.encode(signature), claims)
    }

    /// The claims of a well-formed, correctly signed, unexpired token; nil otherwise.
    public func verify(_ token: String, now: Int = Int(Date().timeIntervalSince1970)) -> TokenClaims? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        // Only the exact header this signer writes is accepted: the algorithm is pinned, and a
        // constant needs no parsing.
        guard parts.count == 3, parts[0] == Self.header, let signature = Base64URL.decode(parts[2]) else { return nil }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        let expected = Crypto.hmacSHA256(key: key, message: signingInput)
        guard Crypto.constantTimeEquals(signature, expected),
              let payloadBytes = Base64URL.decode(parts[1]),
              let payload = try? JSONParser.parse(payloadBytes),
              let subject = payload["sub"]?.stringValue,
              let expiresAt = payload["exp"]?.intValue, expiresAt > now
        else { return nil }
        return TokenClaims(subject: subject, email: payload["email"]?.stringValue ?? "",
                           issuedAt: payload["iat"]?.intValue ?? 0, expiresAt: expiresAt,
                           tokenID: payload["jti"]?.stringValue ?? "", sessionID: payload["sid"]?.stringValue,
                           generation: payload["gen"]?.intValue ?? 0)
    }

    /// A key for another purpose than signing, derived from the signing key, so that one secret
    /// serves both and neither use can stand in for the other.
    public func derivedKey(for purpose: String) -> [UInt8] {
        Crypto.hmacSHA256(key: key, message: Array("privia derived key: \(purpose)".utf8))
    }
}
