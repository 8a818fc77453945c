import Foundation

/// One message of the history an engine sees.
public struct ChatMessage: Equatable, Sendable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
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

/// What a generation produced, once it ended.
public struct EngineResult: Sendable {
    public var content: String
    public var sources: [String]
    public var mode: String
    public var model: String
    public var usage: TokenUsage?
    public init(content: String, sources: [String] = [], mode: String, model: String, usage: TokenUsage? = nil) {
        self.content = content
        self.sources = sources
        self.mode = mode
        self.model = model
        self.usage = usage
    }
}

/// How a generation talks back to whoever carries it. The engine calls `token` for every piece
/// of text, `keepGoing` between pieces of work, and `pause(for:)` when it has to wait; any of
/// them returning false means stop now (the user pressed stop or the client left), and the
/// engine returns what it has.
public protocol GenerationSink: AnyObject {
    func token(_ text: String) -> Bool
    func keepGoing() -> Bool
    /// Waits up to `duration` with nothing to send; false as soon as the turn should stop,
    /// which may end the wait early. A transport that can wait on its connection does so in
    /// one call; the default sleeps in slices and asks `keepGoing` between them.
    func pause(for duration: Duration) -> Bool
    /// Says the generation is about to wait on something slow (a provider's answer, a delay),
    /// so its carrier can treat the turn as long work from here on. By default nothing.
    func willWait()
}

extension GenerationSink {
    public func pause(for duration: Duration) -> Bool { SlicedPause.wait(duration, keepGoing: keepGoing) }
    public func willWait() {}
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
    /// The text already streamed to the sink when the failure came after the first token, so the
    /// answer can be kept as a partial one; nil when nothing was produced.
    public var partialContent: String?
    public init(_ code: Code, _ message: String, retryable: Bool = false,
                retryAfterSeconds: Double? = nil, partialContent: String? = nil) {
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retryAfterSeconds = retryAfterSeconds
        self.partialContent = partialContent
    }
    public var description: String { "\(code.rawValue): \(message)" }
}

/// A streaming chat engine. Generations run on the calling thread (one request, one thread)
/// and return when the answer is complete or the sink asked to stop.
public protocol ChatEngine: Sendable {
    func generate(_ context: EngineContext, sink: GenerationSink) throws -> EngineResult
}
