import Foundation

/// Reads an OpenAI-compatible `chat/completions` stream (`stream: true`) as it arrives:
/// `data: {chunk}` events carrying `choices[0].delta.content`, a `finish_reason`, the usage
/// chunk that `stream_options.include_usage` adds (often with empty `choices`), and `data: [DONE]`.
///
/// A value type fed with bytes; the engine hands the content it returns to the sink.
struct ChatCompletionStream: Sendable {
    private var events = ServerSentEventParser()
    /// The model the provider says answered (OpenRouter names the routed model here).
    private(set) var model: String?
    private(set) var usage: TokenUsage?
    private(set) var finishReason: String?
    /// True once `data: [DONE]` arrived; later bytes are ignored.
    private(set) var sawDone = false
    /// Set when the stream turned bad (a malformed chunk, an error the provider sent in-stream);
    /// the engine aborts the transfer and throws it. Later bytes are ignored.
    private(set) var failure: EngineError?

    /// True when the stream ended properly: `[DONE]`, or at least a `finish_reason`.
    var isComplete: Bool { sawDone || finishReason != nil }

    /// Feeds the next bytes; returns the content deltas they completed, in order (possibly none).
    mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [String] where Bytes.Element == UInt8 {
        guard !sawDone, failure == nil else { return [] }
        var deltas: [String] = []
        for event in events.feed(bytes) {
            guard !sawDone, failure == nil else { break }
            if let delta = handle(event) { deltas.append(delta) }
        }
        return deltas
    }

    /// Called when the body ended: a last event sent without its blank line still counts, unless
    /// it is unreadable (then the body was cut, which `isComplete` reports).
    mutating func finish() -> [String] {
        guard !sawDone, failure == nil, let event = events.finish() else { return [] }
        var probe = self
        let delta = probe.handle(event)
        guard probe.failure == nil else { return [] }
        self = probe
        return delta.map { [$0] } ?? []
    }

    private mutating func handle(_ event: ServerSentEvent) -> String? {
        let data = event.data.trimmingCharacters(in: .whitespaces)
        if data == "[DONE]" {
            sawDone = true
            return nil
        }
        let chunk: ChatCompletionChunk
        do {
            chunk = try JSONDecoder().decode(ChatCompletionChunk.self, from: Data(data.utf8))
        } catch {
            failure = EngineError(.provider, "malformed chunk from the provider", retryable: true)
            return nil
        }
        if let error = chunk.error {
            // OpenRouter and others report failures found after the 200 as an in-stream error chunk.
            failure = EngineError(.provider, "the provider failed mid-stream: " + (error.message ?? "unknown error"), retryable: true)
            return nil
        }
        if event.name == "error" {
            failure = EngineError(.provider, "the provider failed mid-stream", retryable: true)
            return nil
        }
        if let model = chunk.model, !model.isEmpty { self.model = model }
        if let usage = chunk.usage, let input = usage.promptTokens, let output = usage.completionTokens {
            self.usage = TokenUsage(inputTokens: input, outputTokens: output, estimated: false)
        }
        guard let choice = chunk.choices?.first(where: { ($0.index ?? 0) == 0 }) else { return nil }
        if let reason = choice.finishReason { finishReason = reason }
        guard let content = choice.delta?.content, !content.isEmpty else { return nil }
        return content
    }
}

/// The parts of a `chat.completion.chunk` Privia reads; everything else is ignored.
struct ChatCompletionChunk: Decodable {
    struct Choice: Decodable {
        struct Delta: Decodable { var content: String? }
        var index: Int?
        var delta: Delta?
        var finishReason: String?
        enum CodingKeys: String, CodingKey { case index, delta, finishReason = "finish_reason" }
    }
    struct Usage: Decodable {
        var promptTokens: Int?
        var completionTokens: Int?
        enum CodingKeys: String, CodingKey { case promptTokens = "prompt_tokens", completionTokens = "completion_tokens" }
    }
    var model: String?
    var choices: [Choice]?
    var usage: Usage?
    var error: ProviderErrorBody?
}

/// A provider's error, as `{"error": {"message": …}}` (OpenAI, OpenRouter, vLLM) or
/// `{"error": "…"}` (Ollama, llama.cpp).
struct ProviderErrorBody: Decodable {
    var message: String?

    private enum CodingKeys: String, CodingKey { case message }

    init(from decoder: Decoder) throws {
        if let text = try? decoder.singleValueContainer().decode(String.self) {
            message = text
        } else {
            message = try? decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(String.self, forKey: .message)
        }
    }

    /// The message of an error response body, if it is one of the shapes above (or a bare `{"message": …}`).
    static func message(in body: [UInt8]) -> String? {
        struct Envelope: Decodable {
            var error: ProviderErrorBody?
            var message: String?
        }
        guard let envelope = try? JSONDecoder().decode(Envelope.self, from: Data(body)) else { return nil }
        let message = envelope.error?.message ?? envelope.message
        return message.flatMap { $0.allSatisfy(\.isWhitespace) ? nil : $0 }
    }
}
