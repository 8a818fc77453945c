import PriviaSupport

/// A person with an account.
public struct User: Equatable, Sendable {
    public var id: String
    public var email: String
    public var fullName: String?
    public var role: String

    public var json: JSON {
        ["id": .string(id), "email": .string(email), "full_name": .optional(fullName), "role": .string(role)]
    }
}

/// The caller of a request, once its token checked out.
public struct AuthenticatedUser: Sendable {
    public var user: User
    public var tokenID: String
    public var tokenExpiresAt: Int
    /// The browser session the token belongs to, if it was issued to one.
    public var sessionID: String?
}
