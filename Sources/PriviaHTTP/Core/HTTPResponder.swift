/// The seam between a transport and the application: a request in, a response out.
/// Transports (FastCGI here) call it; tests call it directly with plain values.
public protocol HTTPResponder: Sendable {
    func respond(to request: HTTPRequest) -> HTTPResponse
}
