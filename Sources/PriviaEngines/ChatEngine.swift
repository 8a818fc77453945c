import Foundation

/// One message of the history an engine sees.
public struct ChatMessage: Equatable, Sendable {
    /// Who wrote it; the raw values are the providers' role names.
    public enum Role: String, Sendable { case system, user, assistant }
    public var role: Role
    public var content: String
    public init(role: Role, content: String) {
        self.role = role
        self.content = content
    }
}

/// Everything an engine needs for one generation.
public struct EngineContext: Sendable {
    public var userID: String
    public var conversationID: String
    /// Oldest first; ends with the user's new message.
    public var history: [ChatMessage]
    public var model: String?
    public var temperature: Double?
    public var maxTokens: Int?

    public init(userID: String, conversationID: String, history: [ChatMessage], model: String? = nil,
                temperature: Double? = nil, maxTokens: Int? = nil) {
        self.userID = userID
        self.conversationID = conversationID
        self.history = history
        self.model = model
        self.temperature = temperature
        self.maxTokens = maxTokens
    }
}

/// Token counts for one generation; `estimated` when the provider did not report them.
public struct TokenUsage: Equatable, Sendable {
    public var inputTokens: Int
    public var outputTokens: Int
    public var estimated: Bool
    public init(inputTokens: Int, outputTokens: Int, estimated: Bool) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.estimated = estimated
    }
}

/// How a generation ended, besides its text (which is in its `StreamedAnswer`).
public struct EngineResult: Sendable {
    /// How the answer was made: by a model in a chat, or by the offline stub.
    public enum Mode: String, Sendable { case chat, stub }
    public var sources: [String]
    public var mode: Mode
    public var model: String
    public var usage: TokenUsage?
    public init(sources: [String] = [], mode: Mode, model: String, usage: TokenUsage? = nil) {
        self.sources = sources
        self.mode = mode
        self.model = model
        self.usage = usage
    }
}

/// The transport that carries a generation to its client (an SSE stream, a WebSocket through the
/// relay, a REST response). It gets every piece of text as it comes; any call returning false
/// means stop now (the user pressed stop or the client left). Engines reach it through the
/// turn's `StreamedAnswer`, which records what it took.
public protocol GenerationSink: AnyObject {
    func token(_ text: String) -> Bool
    /// Asked between pieces of work; false stops the generation.
    func keepGoing() -> Bool
    /// Waits up to `duration` with nothing to send; false as soon as the turn should stop,
    /// which may end the wait early. A transport that can wait on its connection does so in
    /// one call; the default sleeps in slices and asks `keepGoing` between them.
    func pause(for duration: Duration) -> Bool
}

extension GenerationSink {
    public func pause(for duration: Duration) -> Bool { SlicedPause.wait(duration, keepGoing: keepGoing) }
}

/// Sleeping in slices of at most 50 ms, asking between them whether to go on, so a stop lands
/// within a slice: for sinks that cannot wait on a connection.
public enum SlicedPause {
    static let slice = Duration.milliseconds(50)

    public static func wait(_ duration: Duration, keepGoing: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now + duration
        while true {
            guard keepGoing() else { return false }
            let left = deadline - ContinuousClock.now
            if left <= .zero { return true }
            let (seconds, attoseconds) = min(left, slice).components
            usleep(UInt32(max(1, seconds * 1_000_000 + attoseconds / 1_000_000_000_000)))
        }
    }
}

/// A provider failure with a stable code, and whether another model may be tried.
public struct EngineError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable { case provider = "PROVIDER", rateLimit = "RATE_LIMIT", auth = "AUTH" }
    public var code: Code
    public var message: String
    public var retryable: Bool
    /// The provider's `Retry-After`, in seconds, when it sent one (rate limits, overload).
    public var retryAfterSeconds: Double?
    public init(_ code: Code, _ message: String, retryable: Bool = false, retryAfterSeconds: Double? = nil) {
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retryAfterSeconds = retryAfterSeconds
    }
    public var description: String { "\(code.rawValue): \(message)" }
}

/// A streaming chat engine. Generations run on the calling thread (one request, one thread)
/// and return when the answer is complete or its sink asked to stop. The text goes into
/// `answer` piece by piece; a failure after the first piece leaves what was streamed there.
public protocol ChatEngine: Sendable {
    func generate(_ context: EngineContext, into answer: StreamedAnswer) throws -> EngineResult
}
