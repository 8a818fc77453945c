import NIOCore
import NIOEmbedded
import Testing
@testable import PriviaRelay

/// A pool that answers every request at once with one canned response, or fails.
struct CannedPool: PoolTransport {
    final class Call: PoolCall {
        func cancel() {}
        func stop() {}
        func setReading(_ reading: Bool) {}
    }

    let status: Int?
    let body: String

    func start(_ request: FastCGIRequest, on eventLoop: any EventLoop,
               onEvent: @escaping (FastCGIResponseEvent) -> Void) -> any PoolCall {
        if let status {
            onEvent(.head(CGIResponseHead(status: status, headers: [])))
            onEvent(.body(ByteBuffer(string: body)))
            onEvent(.end)
        } else {
            onEvent(.failed(FastCGIClientError.closedBeforeResponse))
        }
        return Call()
    }
}

@Suite struct PoolAuthenticatorTests {
    private func identify(_ pool: CannedPool, token: String? = "tok") throws -> SocketIdentity {
        let loop = EmbeddedEventLoop()
        let future = PoolAuthenticator(transport: pool).identify(token: token, remoteAddress: "127.0.0.1", on: loop)
        loop.run()
        return try future.wait()
    }

    @Test func outcomes() throws {
        #expect(try identify(CannedPool(status: 200, body: #"{"id":"u7","email":"e"}"#)) == .user(id: "u7", token: "tok"))
        #expect(try identify(CannedPool(status: 401, body: #"{"detail":"Invalid or expired token","code":"AUTH"}"#))
            == .rejected(reason: "Invalid or expired token"))
        #expect(try identify(CannedPool(status: 200, body: "")) == .unavailable, "200 without an id")
        #expect(try identify(CannedPool(status: 503, body: "")) == .unavailable)
        #expect(try identify(CannedPool(status: nil, body: "")) == .unavailable)
        #expect(try identify(CannedPool(status: 200, body: #"{"id":"u7"}"#), token: nil) == .rejected(reason: "Not authenticated"))
    }

    @Test func authRequestCarriesTheToken() {
        let request = PoolRequests.authMe(token: "abc", remoteAddress: "10.1.2.3", requestID: "r1")
        let params = Dictionary(request.params, uniquingKeysWith: { a, _ in a })
        #expect(params["REQUEST_METHOD"] == "GET")
        #expect(params["REQUEST_URI"] == "/api/auth/me")
        #expect(params["HTTP_AUTHORIZATION"] == "Bearer abc")
        #expect(params["REMOTE_ADDR"] == "10.1.2.3")
        #expect(params["REQUEST_ID"] == "r1")
        #expect(request.body.isEmpty)
    }
}
