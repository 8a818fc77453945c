import Foundation
import PriviaSupport
import Testing
@testable import PriviaEngines

@Suite struct ChatCompletionStreamTests {
    /// A realistic stream: CRLF line ends, a comment, a role-only first chunk, a multi-byte
    /// character (split across reads when fed byte by byte), finish_reason, the usage chunk with
    /// empty choices, [DONE].
    static let wire = [
        ": OPENROUTER PROCESSING",
        "",
        #"data: {"id":"c1","object":"chat.completion.chunk","model":"vendor/model-2024","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        "",
        #"data: {"id":"c1","object":"chat.completion.chunk","model":"vendor/model-2024","choices":[{"index":0,"delta":{"content":"Grüß "},"finish_reason":null}],"usage":null}"#,
        "",
        #"data:{"id":"c1","object":"chat.completion.chunk","model":"vendor/model-2024","choices":[{"index":0,"delta":{"content":"dich 👋"},"finish_reason":null}]}"#,
        "",
        #"data: {"id":"c1","object":"chat.completion.chunk","model":"vendor/model-2024","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        "",
        #"data: {"id":"c1","object":"chat.completion.chunk","model":"vendor/model-2024","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#,
        "",
        "data: [DONE]",
        "",
        "",
    ].joined(separator: "\r\n")

    @Test func byteByByteGivesTheSameAsOneRead() {
        var whole = ChatCompletionStream()
        let all = whole.feed(Array(Self.wire.utf8))
        var bytewise = ChatCompletionStream()
        var pieces: [String] = []
        for byte in Self.wire.utf8 { pieces += bytewise.feed([byte]) }
        #expect(all == ["Grüß ", "dich 👋"])
        #expect(pieces == all)
        for stream in [whole, bytewise] {
            #expect(stream.sawDone && stream.isComplete)
            #expect(stream.finishReason == "stop")
            #expect(stream.model == "vendor/model-2024")
            #expect(stream.usage == TokenUsage(inputTokens: 12, outputTokens: 3, estimated: false))
            #expect(stream.failure == nil)
        }
    }

    @Test func splitsAnywhereInChunksOfEverySize() {
        let bytes = Array(Self.wire.utf8)
        for size in [2, 3, 7, 64] {
            var stream = ChatCompletionStream()
            var text = ""
            var index = 0
            while index < bytes.count {
                text += stream.feed(bytes[index..<min(index + size, bytes.count)]).joined()
                index += size
            }
            #expect(text == "Grüß dich 👋", "chunk size \(size)")
            #expect(stream.sawDone)
        }
    }

    @Test func anOversizedLineFailsTheStream() {
        var stream = ChatCompletionStream()
        let line = "data: " + String(repeating: "a", count: SSEParser.maxLineLength)
        #expect(stream.feed(Array(line.utf8)).isEmpty)
        #expect(stream.failure != nil)
    }

    @Test func malformedChunkJSONFailsTheStream() {
        var stream = ChatCompletionStream()
        let deltas = stream.feed(Array("data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\ndata: {\"choices\": [\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"late\"}}]}\n\n".utf8))
        #expect(deltas == ["ok"])
        #expect(stream.failure?.message == "malformed chunk from the provider")
        #expect(stream.failure?.code == .provider)
        #expect(stream.feed(Array("data: [DONE]\n\n".utf8)).isEmpty && !stream.sawDone)
    }

    @Test func anErrorChunkInTheStreamFailsIt() {
        var stream = ChatCompletionStream()
        _ = stream.feed(Array(#"data: {"error":{"message":"upstream overloaded","code":502}}"#.utf8) + [10, 10])
        #expect(stream.failure?.message.contains("upstream overloaded") == true)
    }

    @Test func aFinishReasonWithoutDoneStillCompletes() {
        var stream = ChatCompletionStream()
        _ = stream.feed(Array(#"data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"length"}]}"#.utf8) + [10, 10])
        #expect(stream.isComplete && !stream.sawDone && stream.finishReason == "length")
    }

    @Test func aLastEventWithoutItsBlankLineCounts() {
        var stream = ChatCompletionStream()
        _ = stream.feed(Array("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]".utf8))
        #expect(!stream.sawDone)
        #expect(stream.finish().isEmpty && stream.sawDone)
    }

    @Test func aCutLastChunkIsNotAFailureButNotComplete() {
        var stream = ChatCompletionStream()
        _ = stream.feed(Array("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: {\"choi".utf8))
        #expect(stream.finish().isEmpty)
        #expect(stream.failure == nil && !stream.isComplete)
    }

    @Test func providerErrorBodies() {
        #expect(ProviderErrorBody.message(in: Array(#"{"error":{"message":"model not found","type":"invalid_request_error"}}"#.utf8)) == "model not found")
        #expect(ProviderErrorBody.message(in: Array(#"{"error":"bad model"}"#.utf8)) == "bad model")
        #expect(ProviderErrorBody.message(in: Array("<html>502</html>".utf8)) == nil)
    }

    @Test func retryAfterAcceptsSecondsAndDates() {
        #expect(OpenAICompatibleEngine.retryAfterSeconds("2") == 2)
        #expect(OpenAICompatibleEngine.retryAfterSeconds(" 0.5 ") == 0.5)
        #expect(OpenAICompatibleEngine.retryAfterSeconds("soon") == nil)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let inTen = OpenAICompatibleEngine.retryAfterSeconds(formatter.string(from: Date().addingTimeInterval(10)))
        #expect(inTen.map { $0 > 8 && $0 <= 10 } == true)
    }

    @Test func theRequestBodyIsTheStreamingShape() throws {
        let body = ChatCompletionRequest(model: "m", messages: [.init(role: "user", content: "hi")], stream: true,
                                         streamOptions: .init(includeUsage: true), temperature: nil, maxTokens: 50)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = String(data: try encoder.encode(body), encoding: .utf8)
        #expect(text == #"{"max_tokens":50,"messages":[{"content":"hi","role":"user"}],"model":"m","stream":true,"stream_options":{"include_usage":true}}"#)
    }
}
