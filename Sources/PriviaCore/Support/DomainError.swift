/// What went wrong in the domain, in the product's words; the HTTP layer maps each case
/// to a status and a stable code.
public enum DomainError: Error, Equatable, Sendable {
    case notFound(String)
    case invalid(String)
    case conflict(String)
    case unauthorized(String)
    case rateLimited(String)
}
