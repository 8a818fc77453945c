import Foundation
import Testing
@testable import PriviaEngines

/// The engine against the fake provider over real loopback HTTP.
@Suite struct OpenAICompatibleEngineTests {
    let fake: FakeProvider
    init() throws { fake = try FakeProvider.shared() }

    func failure(_ body: () throws -> EngineResult) -> EngineError? {
        do { _ = try body(); return nil } catch { return error as? EngineError }
    }

    @Test func streamsAnAnswerWithTheProvidersUsage() throws {
        let tag = FakeProvider.tag()
        let engine = fake.engine(model: "stream:tokens=4:tag=\(tag)", apiKey: "sk-secret-123",
                                 headers: ["HTTP-Referer": "https://chat.example.com", "X-Title": "Privia"])
        let sink = RecordingSink()
        let result = try engine.generate(userContext("one two three", temperature: 0.3, maxTokens: 64), sink: sink)
        #expect(sink.tokens == ["tok0 ", "tok1 ", "tok2 ", "tok3 "])
        #expect(sink.answer == "tok0 tok1 tok2 tok3 ")
        #expect(result.mode == .chat && result.sources.isEmpty)
        #expect(result.model == "stream:tokens=4:tag=\(tag)")  // as the chunks report it
        #expect(result.usage == TokenUsage(inputTokens: 3, outputTokens: 4, estimated: false))

        let request = try #require(try fake.requests(tag: tag).first)
        let headers = request["headers"] as? [String: String] ?? [:]
        #expect(headers["Authorization"] == "Bearer sk-secret-123")
        #expect(headers["X-Title"] == "Privia" && headers["HTTP-Referer"] == "https://chat.example.com")
        #expect(headers["Content-Type"] == "application/json")
        #expect(request["path"] as? String == "/v1/chat/completions")
        let body = request["body"] as? [String: Any] ?? [:]
        #expect(body["stream"] as? Bool == true)
        #expect((body["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true)
        #expect(body["temperature"] as? Double == 0.3 && body["max_tokens"] as? Int == 64)
        #expect((body["messages"] as? [[String: String]]) == [["role": "user", "content": "one two three"]])
    }

    @Test func withoutProviderUsageTheEstimateIsMarked() throws {
        let tag = FakeProvider.tag()
        let sink = RecordingSink()
        let result = try fake.engine(model: "stream:tokens=2:usage=0:done=0:tag=\(tag)").generate(userContext("12345678"), sink: sink)
        #expect(sink.answer == "tok0 tok1 ")
        // ceil(8/4) + 4 framing in; ceil(10/4) out.
        #expect(result.usage == TokenUsage(inputTokens: 6, outputTokens: 3, estimated: true))
        let request = try #require(try fake.requests(tag: tag).first)
        #expect((request["headers"] as? [String: String])?["Authorization"] == nil)
    }

    @Test func httpFailuresMapToStableCodes() throws {
        let tag = FakeProvider.tag()
        let sink = RecordingSink()
        let server = failure { try fake.engine(model: "fail-503:tag=\(tag)").generate(userContext(), sink: sink) }
        #expect(server?.code == .provider && server?.retryable == true && sink.answer.isEmpty)

        let limited = failure { try fake.engine(model: "rate-limit:retry_after=7:tag=\(tag)").generate(userContext(), sink: RecordingSink()) }
        #expect(limited?.code == .rateLimit && limited?.retryable == true && limited?.retryAfterSeconds == 7)

        let auth = failure { try fake.engine(model: "unauthorized:tag=\(tag)", apiKey: "sk-leaky-999").generate(userContext(), sink: RecordingSink()) }
        #expect(auth?.code == .auth && auth?.retryable == false)
        #expect(auth.map { !"\($0)".contains("sk-leaky-999") } == true)

        let refused = failure { try fake.engine(model: "fail-400:message=context too long:tag=\(tag)").generate(userContext(), sink: RecordingSink()) }
        #expect(refused?.code == .provider && refused?.retryable == false)
        #expect(refused?.message.contains("context too long") == true)

        let echoed = failure { try fake.engine(model: "fail-400:message=bad key sk-leaky-999:tag=\(tag)", apiKey: "sk-leaky-999").generate(userContext(), sink: RecordingSink()) }
        #expect(echoed?.message.contains("bad key [redacted]") == true)
    }

    @Test func aClosedPortIsARetryableProviderError() throws {
        let engine = OpenAICompatibleEngine(.init(baseURL: "http://127.0.0.1:\(FakeProvider.unusedPort())/v1", model: "m",
                                                  connectTimeoutSeconds: 2, proxy: ""))
        let start = Date()
        let error = failure { try engine.generate(userContext(), sink: RecordingSink()) }
        #expect(error?.code == .provider && error?.retryable == true)
        #expect(error?.message.hasPrefix("could not reach the provider") == true)
        #expect(Date().timeIntervalSince(start) < 2)
    }

    @Test func aStallEndsWithinTheIdleTimeout() throws {
        let tag = FakeProvider.tag()
        let start = Date()
        let sink = RecordingSink()
        let error = failure { try fake.engine(model: "stall:after=2:tag=\(tag)", idleTimeout: 0.3).generate(userContext(), sink: sink) }
        let elapsed = Date().timeIntervalSince(start)
        #expect(error?.code == .provider && error?.message.contains("stalled") == true)
        #expect(sink.answer == "tok0 tok1 ")
        #expect(elapsed >= 0.3 && elapsed < 1.8)
        let seen = try fake.waitForRequests(tag: tag) { $0.first?["client_closed"] as? Bool == true }
        #expect(seen.first?["client_closed"] as? Bool == true)
    }

    @Test func aDropMidAnswerKeepsThePartialContent() throws {
        let tag = FakeProvider.tag()
        let sink = RecordingSink()
        let error = failure { try fake.engine(model: "drop:after=3:tag=\(tag)").generate(userContext(), sink: sink) }
        #expect(error?.code == .provider && error?.message.contains("dropped") == true)
        #expect(sink.answer == "tok0 tok1 tok2 ")
        #expect(sink.text == "tok0 tok1 tok2 ")
    }

    @Test func aMalformedChunkFails() throws {
        let tag = FakeProvider.tag()
        let sink = RecordingSink()
        let error = failure { try fake.engine(model: "malformed:after=1:tag=\(tag)").generate(userContext(), sink: sink) }
        #expect(error?.code == .provider && error?.message == "malformed chunk from the provider")
        #expect(sink.answer == "tok0 ")
    }

    @Test func stopAbortsTheTransferAndTheProviderSeesTheClose() throws {
        let tag = FakeProvider.tag()
        let sink = RecordingSink(stopAfterTokens: 2)
        let start = Date()
        let result = try fake.engine(model: "stream:tokens=200:delay_ms=50:tag=\(tag)").generate(userContext(), sink: sink)
        #expect(Date().timeIntervalSince(start) < 1)
        #expect(sink.answer == "tok0 tok1 ")
        #expect(result.usage?.estimated == true)
        let seen = try fake.waitForRequests(tag: tag) { $0.first?["finished"] as? Bool == true }
        #expect(seen.first?["client_closed"] as? Bool == true)
        #expect(seen.first?["completed"] as? Bool == false)
        #expect((seen.first?["tokens_sent"] as? Int ?? 999) < 10)
    }

    @Test func stopDuringSilenceLandsWithinAPoll() throws {
        let tag = FakeProvider.tag()
        let sink = RecordingSink(stopAfterSeconds: 0.3)
        _ = try fake.engine(model: "stall:after=1:tag=\(tag)", idleTimeout: 10).generate(userContext(), sink: sink)
        let lag = Date().timeIntervalSince(try #require(sink.stopRequested))
        #expect(sink.answer == "tok0 ")
        #expect(lag < 0.2)
        let seen = try fake.waitForRequests(tag: tag) { $0.first?["client_closed"] as? Bool == true }
        #expect(seen.first?["client_closed"] as? Bool == true)
    }

    @Test func theOverallCapBoundsASlowAnswer() throws {
        let tag = FakeProvider.tag()
        let sink = RecordingSink()
        let error = failure { try fake.engine(model: "stream:tokens=100:delay_ms=100:tag=\(tag)", totalTimeout: 0.5).generate(userContext(), sink: sink) }
        #expect(error?.code == .provider && error?.message.contains("did not finish within") == true)
        #expect(sink.answer == sink.text && !sink.tokens.isEmpty)
    }
}
