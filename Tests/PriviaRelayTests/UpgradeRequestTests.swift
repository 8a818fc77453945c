import NIOHTTP1
import Testing
@testable import PriviaRelay

@Suite struct UpgradeRequestTests {
    private func request(_ uri: String, _ headers: [(String, String)] = []) -> UpgradeRequest {
        UpgradeRequest(HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers)))
    }

    @Test func tokenPrecedence() {
        let all = request("/api/ws/chat?token=q", [("Authorization", "Bearer h"), ("Cookie", "a=1; auth-token=c")])
        #expect(all.token == "h")
        #expect(request("/api/ws/chat?token=q", [("Cookie", "a=1; auth-token=c")]).token == "c")
        #expect(request("/api/ws/chat?x=1&token=a%2Eb%2Bc", [("Authorization", "Basic zzz")]).token == "a.b+c")
        #expect(request("/api/ws/chat?token=", [("Authorization", "Bearer ")]).token == nil)
        #expect(request("/api/ws/chat").token == nil)
        #expect(request("/api/ws/chat?token=%zz").token == nil)
    }

    @Test func routes() {
        #expect(request("/api/ws/chat?token=a").route(allowedOrigins: []) == .chat)
        #expect(request("/api/ws/other").route(allowedOrigins: []) == .notFound)
        #expect(request("/api/ws/chat/").route(allowedOrigins: []) == .notFound)
        let allowed: Set<String> = ["https://app.example"]
        #expect(request("/api/ws/chat", [("Origin", "https://evil.example")]).route(allowedOrigins: allowed) == .forbiddenOrigin)
        #expect(request("/api/ws/chat", [("Origin", "https://APP.example/")]).route(allowedOrigins: allowed) == .chat)
        #expect(request("/api/ws/chat").route(allowedOrigins: allowed) == .chat, "non-browser clients send no Origin")
    }

    @Test func theRequestsOwnOriginIsAllowedLikeNginxAllowsIt() {
        let allowed: Set<String> = ["https://app.example"]
        let own = [("Origin", "https://127.0.0.1:8443"), ("Host", "127.0.0.1:8443"), ("X-Forwarded-Proto", "https")]
        #expect(request("/api/ws/chat", own).route(allowedOrigins: allowed) == .chat)
        let otherPort = [("Origin", "https://127.0.0.1:9443"), ("Host", "127.0.0.1:8443"), ("X-Forwarded-Proto", "https")]
        #expect(request("/api/ws/chat", otherPort).route(allowedOrigins: allowed) == .forbiddenOrigin)
        let plainScheme = [("Origin", "https://127.0.0.1:8443"), ("Host", "127.0.0.1:8443"), ("X-Forwarded-Proto", "http")]
        #expect(request("/api/ws/chat", plainScheme).route(allowedOrigins: allowed) == .forbiddenOrigin)
    }

    @Test func remoteAddress() {
        #expect(request("/", [("X-Real-IP", "203.0.113.9")]).remoteAddress == "203.0.113.9")
        #expect(request("/", [("X-Forwarded-For", "2001:db8::1, 10.0.0.1")]).remoteAddress == "2001:db8::1")
        #expect(request("/", [("X-Real-IP", "1.2.3.4\r\nX: y")]).remoteAddress == "127.0.0.1")
        #expect(request("/").remoteAddress == "127.0.0.1")
    }
}
