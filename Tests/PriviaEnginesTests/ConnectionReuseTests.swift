import Foundation
import Testing
@testable import PriviaEngines

/// Turns share the provider connection an earlier turn left open, and a turn that ended badly
/// leaves none behind that the next one would trip on. Each test has its own handle pool, so
/// tests running at once do not take each other's connections; the fake provider numbers the
/// TCP connections it accepted and records which one carried each request.
@Suite struct ConnectionReuseTests {
    let fake: FakeProvider
    init() throws { fake = try FakeProvider.shared() }

    func failure(_ body: () throws -> EngineResult) -> EngineError? {
        do { _ = try body(); return nil } catch { return error as? EngineError }
    }

    /// The connection that carried each of the tag's requests, in order.
    func connections(_ tag: String, count: Int) throws -> [Int] {
        let seen = try fake.waitForRequests(tag: tag) { $0.count >= count && $0.allSatisfy { $0["finished"] as? Bool == true } }
        return seen.sorted { ($0["id"] as? Int ?? 0) < ($1["id"] as? Int ?? 0) }.compactMap { $0["connection"] as? Int }
    }

    @Test func turnsShareOneConnection() throws {
        let tag = FakeProvider.tag(), handles = CurlHandlePool()
        for _ in 0..<4 {
            let resultSink = RecordingSink()
            _ = try fake.engine(model: "stream:tokens=3:tag=\(tag)", handles: handles).generate(userContext(), sink: resultSink)
            #expect(resultSink.answer == "tok0 tok1 tok2 ")
        }
        let used = try connections(tag, count: 4)
        #expect(used.count == 4 && Set(used).count == 1)
    }

    @Test func aReusedConnectionCarriesOnlyTheTurnsOwnRequest() throws {
        let tag = FakeProvider.tag(), handles = CurlHandlePool()
        let firstSink = RecordingSink()
        _ = try fake.engine(model: "stream:tokens=2:tag=\(tag)", apiKey: "sk-first-key", headers: ["X-Title": "Privia"],
                                    handles: handles).generate(userContext("first question"), sink: firstSink)
        #expect(firstSink.answer == "tok0 tok1 ")

        // Error responses are read to their end, so they keep the connection too.
        let limited = failure { try fake.engine(model: "rate-limit:retry_after=7:tag=\(tag)", handles: handles).generate(userContext(), sink: RecordingSink()) }
        #expect(limited?.code == .rateLimit && limited?.retryAfterSeconds == 7)
        let refused = failure { try fake.engine(model: "fail-400:message=context too long:tag=\(tag)", handles: handles).generate(userContext(), sink: RecordingSink()) }
        #expect(refused?.code == .provider && refused?.retryAfterSeconds == nil && refused?.message.contains("context too long") == true)

        let sink = RecordingSink()
        let last = try fake.engine(model: "echo:tag=\(tag)", handles: handles).generate(userContext("second question"), sink: sink)
        #expect(sink.answer == "second question" && sink.text == "second question")
        #expect(last.usage == TokenUsage(inputTokens: 2, outputTokens: 2, estimated: false))

        let used = try connections(tag, count: 4)
        #expect(used.count == 4 && Set(used).count == 1)
        let requests = try fake.requests(tag: tag).sorted { ($0["id"] as? Int ?? 0) < ($1["id"] as? Int ?? 0) }
        let lastHeaders = requests.last?["headers"] as? [String: String] ?? [:]
        #expect(lastHeaders["Authorization"] == nil && lastHeaders["X-Title"] == nil)
        let lastMessages = (requests.last?["body"] as? [String: Any])?["messages"] as? [[String: String]]
        #expect(lastMessages == [["role": "user", "content": "second question"]])
    }

    @Test func aStoppedTurnsConnectionIsClosedAndTheNextTurnWorks() throws {
        let tag = FakeProvider.tag(), handles = CurlHandlePool()
        _ = try fake.engine(model: "stream:tokens=2:tag=\(tag)", handles: handles).generate(userContext(), sink: RecordingSink())
        let stoppedSink = RecordingSink(stopAfterTokens: 2)
        _ = try fake.engine(model: "stream:tokens=200:delay_ms=20:tag=\(tag)", handles: handles)
            .generate(userContext(), sink: stoppedSink)
        #expect(stoppedSink.answer == "tok0 tok1 ")
        let seen = try fake.waitForRequests(tag: tag) { $0.count == 2 && $0.allSatisfy { $0["finished"] as? Bool == true } }
        #expect(seen.contains { $0["client_closed"] as? Bool == true }, "the provider saw the stopped turn leave")

        for _ in 0..<2 {
            let nextSink = RecordingSink()
            _ = try fake.engine(model: "stream:tokens=2:tag=\(tag)", handles: handles).generate(userContext(), sink: nextSink)
            #expect(nextSink.answer == "tok0 tok1 ")
        }
        let used = try connections(tag, count: 4)
        #expect(used.count == 4)
        #expect(used[0] == used[1], "the stop came on the first turn's connection")
        #expect(used[2] != used[1], "the stopped turn's connection was not reused")
        #expect(used[3] == used[2])
    }

    @Test func afterAFailedTurnTheNextTurnWorks() throws {
        let tag = FakeProvider.tag(), handles = CurlHandlePool()
        let failures = ["drop:after=1", "malformed:after=1", "stall:after=1"]
        for behaviour in failures {
            let failedSink = RecordingSink()
            let error = failure {
                try fake.engine(model: "\(behaviour):tag=\(tag)", idleTimeout: 0.5, handles: handles).generate(userContext(), sink: failedSink)
            }
            #expect(error?.code == .provider && failedSink.answer == "tok0 ", "\(behaviour)")
            let nextSink = RecordingSink()
            _ = try fake.engine(model: "stream:tokens=2:tag=\(tag)", handles: handles).generate(userContext(), sink: nextSink)
            #expect(nextSink.answer == "tok0 tok1 ", "after \(behaviour)")
        }
        let used = try connections(tag, count: 2 * failures.count)
        #expect(used.count == 2 * failures.count)
        // Each failure was on the connection the turn before it left open, and ended it.
        for index in stride(from: 2, to: used.count, by: 2) {
            #expect(used[index] == used[index - 1])
            #expect(used[index + 1] != used[index])
        }
    }

    @Test func aResponseLeftOpenAfterTheLastEventEndsTheTurnPromptly() throws {
        let tag = FakeProvider.tag(), handles = CurlHandlePool()
        let start = Date()
        let heldSink = RecordingSink()
        let held = try fake.engine(model: "stream:tokens=2:hold=5:tag=\(tag)", handles: handles).generate(userContext(), sink: heldSink)
        #expect(heldSink.answer == "tok0 tok1 " && held.usage?.estimated == false)
        #expect(Date().timeIntervalSince(start) < 2)
        let nextSink = RecordingSink()
        _ = try fake.engine(model: "stream:tokens=2:tag=\(tag)", handles: handles).generate(userContext(), sink: nextSink)
        #expect(nextSink.answer == "tok0 tok1 ")
        let used = try connections(tag, count: 2)
        #expect(used.count == 2 && used[0] != used[1], "the connection left open was closed, not reused")
    }
}

/// The same over HTTPS, where reuse also saves the TLS handshake: the provider's certificate is
/// checked against its `ca_file` (here the fake's self-signed one).
@Suite struct ConnectionReuseOverTLSTests {
    let fake: FakeProvider
    init() throws { fake = try FakeProvider.sharedTLS() }

    @Test func turnsShareOneTLSConnection() throws {
        let tag = FakeProvider.tag(), handles = CurlHandlePool()
        for _ in 0..<3 {
            let resultSink = RecordingSink()
            _ = try fake.engine(model: "stream:tokens=3:tag=\(tag)", handles: handles).generate(userContext(), sink: resultSink)
            #expect(resultSink.answer == "tok0 tok1 tok2 ")
        }
        let seen = try fake.waitForRequests(tag: tag) { $0.count == 3 && $0.allSatisfy { $0["finished"] as? Bool == true } }
        #expect(seen.count == 3 && Set(seen.compactMap { $0["connection"] as? Int }).count == 1)
    }

    @Test func aCertificateOutsideTheTrustedAuthoritiesIsRefused() throws {
        let tag = FakeProvider.tag()
        do {
            _ = try fake.engine(model: "stream:tokens=3:tag=\(tag)", handles: CurlHandlePool(), systemTrust: true)
                .generate(userContext(), sink: RecordingSink())
            Issue.record("a self-signed certificate was accepted")
        } catch let error as EngineError {
            #expect(error.code == .provider && error.message.hasPrefix("could not reach the provider"))
        }
        #expect(try fake.requests(tag: tag).isEmpty)
    }
}
