import PriviaSupport

/// Reads an OpenAI-compatible `chat/completions` stream (`stream: true`) as it arrives:
/// `data: {chunk}` events carrying `choices[0].delta.content`, a `finish_reason`, the usage
/// chunk that `stream_options.include_usage` adds (often with empty `choices`), and `data: [DONE]`.
///
/// A value type fed with bytes; the engine hands the content it returns to the sink.
struct ChatCompletionStream: Sendable {
    private var events = SSEParser()
    /// The model the provider says answered (OpenRouter names the routed model here).
    private(set) var model: String?
    private(set) var usage: TokenUsage?
    private(set) var finishReason: String?
    /// True once `data: [DONE]` arrived; later bytes are ignored.
    private(set) var sawDone = false
    /// Set when the stream turned bad (a malformed chunk or line, an error the provider sent
    /// in-stream); the engine aborts the transfer and throws it. Later bytes are ignored.
    private(set) var failure: EngineError?

    /// True when the stream ended properly: `[DONE]`, or at least a `finish_reason`.
    var isComplete: Bool { sawDone || finishReason != nil }

    /// Feeds the next bytes; returns the content deltas they completed, in order (possibly none).
    mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [String] where Bytes.Element == UInt8 {
        guard !sawDone, failure == nil else { return [] }
        let completed: [SSEEvent]
        do {
            completed = try events.feed(bytes)
        } catch {
            failure = EngineError(.provider, "the provider's stream has a line or event too large", retryable: true)
            return []
        }
        var deltas: [String] = []
        for event in completed {
            guard !sawDone, failure == nil else { break }
            if let delta = handle(event) { deltas.append(delta) }
        }
        return deltas
    }

    /// Called when the body ended: a last event sent without its blank line still counts, unless
    /// it is unreadable (then the body was cut, which `isComplete` reports).
    mutating func finish() -> [String] {
        guard !sawDone, failure == nil, let event = try? events.finish() else { return [] }
        var probe = self
        let delta = probe.handle(event)
        guard probe.failure == nil else { return [] }
        self = probe
        return delta.map { [$0] } ?? []
    }

    private mutating func handle(_ event: SSEEvent) -> String? {
        let data = event.data.trimmingWhiteSpace
        if data == "[DONE]" {
            sawDone = true
            return nil
        }
        guard let chunk = try? JSONParser.parse(data), case .object = chunk else {
            failure = EngineError(.provider, "malformed chunk from the provider", retryable: true)
            return nil
        }
        if let error = chunk["error"], !error.isNull {
            // OpenRouter and others report failures found after the 200 as an in-stream error chunk.
            let message = ProviderErrorBody.message(of: error) ?? "unknown error"
            failure = EngineError(.provider, "the provider failed mid-stream: " + message, retryable: true)
            return nil
        }
        if event.type == "error" {
            failure = EngineError(.provider, "the provider failed mid-stream", retryable: true)
            return nil
        }
        if let model = chunk["model"]?.stringValue, !model.isEmpty { self.model = model }
        if let usage = chunk["usage"], let input = usage["prompt_tokens"]?.intValue,
           let output = usage["completion_tokens"]?.intValue {
            self.usage = TokenUsage(inputTokens: input, outputTokens: output, estimated: false)
        }
        guard let choice = chunk["choices"]?.arrayValue?.first(where: { ($0["index"]?.intValue ?? 0) == 0 }) else { return nil }
        if let reason = choice["finish_reason"]?.stringValue { finishReason = reason }
        guard let content = choice["delta"]?["content"]?.stringValue, !content.isEmpty else { return nil }
        return content
    }
}

/// A provider's error, as `{"error": {"message": …}}` (OpenAI, OpenRouter, vLLM) or
/// `{"error": "…"}` (Ollama, llama.cpp).
enum ProviderErrorBody {
    /// The message of an `error` member in either shape.
    static func message(of error: JSON) -> String? {
        error.stringValue ?? error["message"]?.stringValue
    }

    /// The message of an error response body, if it is one of the shapes above (or a bare `{"message": …}`).
    static func message(in body: [UInt8]) -> String? {
        guard let envelope = try? JSONParser.parse(body) else { return nil }
        let message = envelope["error"].flatMap(message(of:)) ?? envelope["message"]?.stringValue
        return message.flatMap { $0.isBlank ? nil : $0 }
    }
}
