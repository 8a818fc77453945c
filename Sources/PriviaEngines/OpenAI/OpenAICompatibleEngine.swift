import Foundation

/// An API key or other credential: kept out of `description`, `debugDescription` and mirrors, so
/// printing a configuration or an engine can never leak it.
public struct ProviderSecret: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "[redacted]" }
    public var debugDescription: String { "[redacted]" }
    public var customMirror: Mirror { Mirror(self, children: []) }
}

/// Streams answers from any OpenAI-compatible `chat/completions` endpoint (OpenAI, OpenRouter,
/// vLLM, llama.cpp's server, Ollama's `/v1`) over libcurl, on the calling thread.
///
/// Every wait is bounded: `connectTimeoutSeconds` to connect (DNS and TLS included),
/// `idleTimeoutSeconds` without a byte (the provider stalled), `totalTimeoutSeconds` overall, and
/// the sink is asked `keepGoing()` at least every 50 ms. Failures are `EngineError`s; one that
/// comes after the first token leaves the text produced so far in the answer.
public struct OpenAICompatibleEngine: ChatEngine {
    public struct Configuration: Sendable {
        /// Up to and including the version, e.g. `https://openrouter.ai/api/v1`; `/chat/completions` is appended.
        public var baseURL: String
        public var apiKey: ProviderSecret?
        /// The provider's model name, e.g. `openai/gpt-4o-mini`.
        public var model: String
        /// Sent with every request, e.g. OpenRouter's `HTTP-Referer` and `X-Title`.
        public var extraHeaders: [String: String]
        public var connectTimeoutSeconds: Double
        public var idleTimeoutSeconds: Double
        public var totalTimeoutSeconds: Double
        /// nil: libcurl's default, which honours `https_proxy`/`no_proxy`; "": never a proxy.
        public var proxy: String?
        /// The certificate authorities (a PEM file) the provider's certificate must chain to,
        /// e.g. a self-hosted server's private CA; nil: the system's.
        public var caFile: String?

        public init(baseURL: String, apiKey: ProviderSecret? = nil, model: String, extraHeaders: [String: String] = [:],
                    connectTimeoutSeconds: Double = 10, idleTimeoutSeconds: Double = 30,
                    totalTimeoutSeconds: Double = 600, proxy: String? = nil, caFile: String? = nil) {
            self.baseURL = baseURL
            self.apiKey = apiKey
            self.model = model
            self.extraHeaders = extraHeaders
            self.connectTimeoutSeconds = connectTimeoutSeconds
            self.idleTimeoutSeconds = idleTimeoutSeconds
            self.totalTimeoutSeconds = totalTimeoutSeconds
            self.proxy = proxy
            self.caFile = caFile
        }

        var endpoint: String {
            var base = baseURL
            while base.hasSuffix("/") { base.removeLast() }
            return base + "/chat/completions"
        }
    }

    public let configuration: Configuration
    /// Where the libcurl handles, and the connections they keep open, come from.
    let handles: CurlHandlePool

    public init(_ configuration: Configuration) {
        self.init(configuration, handles: .shared)
    }

    init(_ configuration: Configuration, handles: CurlHandlePool) {
        self.configuration = configuration
        self.handles = handles
    }

    /// Streams one answer. Returns when the provider finished or the sink said stop (then with
    /// what was produced, and no error); throws `EngineError` otherwise.
    ///
    /// `usage` is the provider's when it reported it, else `TokenEstimate`'s, marked `estimated`.
    public func generate(_ context: EngineContext, into answer: StreamedAnswer) throws -> EngineResult {
        let run = GenerationRun(answer)
        let request = StreamingPost.Request(
            url: configuration.endpoint, headers: headers(), body: try requestBody(context),
            connectTimeoutSeconds: configuration.connectTimeoutSeconds, idleTimeoutSeconds: configuration.idleTimeoutSeconds,
            totalTimeoutSeconds: configuration.totalTimeoutSeconds, proxy: configuration.proxy, caFile: configuration.caFile)
        answer.willWait()
        let response = StreamingPost.perform(request, receiver: run, handles: handles)
        let successful = (200..<300).contains(response.status)

        switch response.outcome {
        case .stoppedByReceiver:
            return result(run, context)
        case .endedByReceiver:
            if answer.stopped || run.stream.sawDone { return result(run, context) }
            if let failure = run.stream.failure { throw failure }
        case .stalled:
            throw EngineError(.provider, "the provider stalled (no data for \(Self.format(configuration.idleTimeoutSeconds)) s)", retryable: true)
        case .timedOut:
            throw EngineError(.provider, "the provider did not finish within \(Self.format(configuration.totalTimeoutSeconds)) s", retryable: true)
        case .failed(_, let message):
            if successful {
                throw EngineError(.provider, "the connection to the provider dropped mid-answer (\(redact(message)))", retryable: true)
            }
            if response.status != 0 { throw httpError(response, body: run.errorBody) }  // cut while reading an error body
            throw EngineError(.provider, "could not reach the provider (\(redact(message)))", retryable: true)
        case .completed:
            break
        }

        guard successful else { throw httpError(response, body: run.errorBody) }
        for delta in run.stream.finish() {
            guard answer.token(delta) else { return result(run, context) }
        }
        if let failure = run.stream.failure { throw failure }
        guard run.stream.isComplete else {
            throw EngineError(.provider, "the provider's answer ended before it was complete", retryable: true)
        }
        return result(run, context)
    }

    private func result(_ run: GenerationRun, _ context: EngineContext) -> EngineResult {
        let usage = run.stream.usage ?? TokenUsage(inputTokens: TokenEstimate.tokens(in: context.history),
                                                   outputTokens: TokenEstimate.tokens(in: run.answer.text), estimated: true)
        return EngineResult(sources: [], mode: .chat,
                            model: run.stream.model ?? configuration.model, usage: usage)
    }

    private func headers() -> [String] {
        var headers = ["Content-Type: application/json", "Accept: text/event-stream", "Expect:"]
        for (name, value) in configuration.extraHeaders.sorted(by: { $0.key < $1.key }) {
            headers.append("\(name): \(value)")
        }
        if let key = configuration.apiKey, !key.value.isEmpty {
            headers.append("Authorization: Bearer \(key.value)")
        }
        return headers
    }

    private func requestBody(_ context: EngineContext) throws -> String {
        let body = ChatCompletionRequest(
            model: configuration.model, messages: context.history.map { .init(role: $0.role.rawValue, content: $0.content) },
            stream: true, streamOptions: .init(includeUsage: true),
            temperature: context.temperature, maxTokens: context.maxTokens)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let text = String(data: try encoder.encode(body), encoding: .utf8) else {
            throw EngineError(.provider, "could not encode the request")
        }
        return text
    }

    /// Maps a refused request to the engine's codes: 429 rate limit (with `Retry-After`),
    /// 401/403 credentials, 5xx the provider's failure, any other status a request it will
    /// refuse again (with its own message, which usually says why).
    private func httpError(_ response: StreamingPost.Response, body: [UInt8]) -> EngineError {
        let status = response.status
        let providerMessage = ProviderErrorBody.message(in: body).map { redact($0) }
        let suffix = providerMessage.map { ": " + $0 } ?? ""
        switch status {
        case 429:
            return EngineError(.rateLimit, "the provider is rate limiting requests (HTTP 429)\(suffix)", retryable: true,
                               retryAfterSeconds: response.headers["retry-after"].flatMap(Self.retryAfterSeconds))
        case 401, 403:
            // The provider's own text is left out: some echo a masked form of the key.
            return EngineError(.auth, "the provider refused the credentials (HTTP \(status)); check the API key")
        case 500...599, 408:
            return EngineError(.provider, "the provider failed (HTTP \(status))\(suffix)", retryable: true,
                               retryAfterSeconds: response.headers["retry-after"].flatMap(Self.retryAfterSeconds))
        case 0:
            return EngineError(.provider, "the provider sent no HTTP response", retryable: true)
        default:
            return EngineError(.provider, providerMessage.map { "the provider refused the request (HTTP \(status)): \($0)" }
                                   ?? "the provider refused the request (HTTP \(status))")
        }
    }

    /// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3).
    static func retryAfterSeconds(_ value: String) -> Double? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(text), seconds.isFinite, seconds >= 0 { return seconds }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: text) else { return nil }
        return max(0, date.timeIntervalSinceNow)
    }

    /// Provider text shown to users and logs: never the key, never unbounded.
    private func redact(_ text: String) -> String {
        var text = text
        if let key = configuration.apiKey?.value, key.count >= 4 {
            text = text.replacingOccurrences(of: key, with: "[redacted]")
        }
        return text.count > 300 ? String(text.prefix(300)) + "…" : text
    }

    private static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }
}

/// The body of a streaming `chat/completions` request.
struct ChatCompletionRequest: Encodable {
    struct Message: Encodable {
        var role: String
        var content: String
    }
    struct StreamOptions: Encodable {
        var includeUsage: Bool
        enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
    }
    var model: String
    var messages: [Message]
    var stream: Bool
    var streamOptions: StreamOptions
    var temperature: Double?
    var maxTokens: Int?
    enum CodingKeys: String, CodingKey {
        case model, messages, stream, temperature
        case streamOptions = "stream_options", maxTokens = "max_tokens"
    }
}

/// One generation's state as the response streams in: parses the body, hands content to the
/// answer, keeps an error body for the error message.
private final class GenerationRun: StreamingResponseReceiver {
    static let errorBodyLimit = 64 * 1024

    let answer: StreamedAnswer
    var stream = ChatCompletionStream()
    var errorBody: [UInt8] = []

    init(_ answer: StreamedAnswer) { self.answer = answer }

    func receive(_ bytes: UnsafeRawBufferPointer, status: Int) -> StreamingPost.Reception {
        guard (200..<300).contains(status) else {
            errorBody.append(contentsOf: bytes.prefix(max(0, Self.errorBodyLimit - errorBody.count)))
            return .more
        }
        for delta in stream.feed(bytes) {
            guard answer.token(delta) else { return .abort }
        }
        // Stop at a bad chunk; at [DONE] (some servers keep the response open after it) the
        // transport only lets the response end, so its connection can be reused.
        if stream.failure != nil { return .abort }
        return stream.sawDone ? .enough : .more
    }

    func keepGoing() -> Bool {
        answer.keepGoing()
    }
}
