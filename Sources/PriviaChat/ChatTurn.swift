import PriviaCore
import PriviaEngines
import PriviaSupport

/// What a turn does: ask a new question, answer the last question again, or replace the
/// last question and answer it.
public enum TurnAction: String, Sendable {
    case ask, regenerate, edit
}

/// What a user asks for in one turn, from any transport.
public struct TurnRequest: Sendable {
    public var question: String
    public var conversationID: String?
    public var model: String?
    public var temperature: Double?
    public var maxTokens: Int?
    public var action: TurnAction
    /// A client's key for this turn: sent twice, it yields one turn and the first one's result.
    public var idempotencyKey: String?

    public init(question: String, conversationID: String? = nil, model: String? = nil,
                temperature: Double? = nil, maxTokens: Int? = nil, action: TurnAction = .ask, idempotencyKey: String? = nil) {
        self.question = question
        self.conversationID = conversationID
        self.model = model
        self.temperature = temperature
        self.maxTokens = maxTokens
        self.action = action
        self.idempotencyKey = idempotencyKey
    }
}

/// A turn whose prompt is persisted and whose generation has not started, or, for a repeated
/// idempotency key, the first turn's result to replay.
public struct PreparedTurn: Sendable {
    public var userID: String
    public var conversationID: String
    public var userMessageID: String
    public var request: TurnRequest
    /// The last messages, the question included, oldest first: what the engine sees. Empty for a replay.
    public var history: [ChatMessage] = []
    public var replay: TurnOutcome?
}

/// How a turn ended.
public struct TurnOutcome: Sendable {
    public enum Status: String, Sendable { case complete, stopped, failed }
    public var conversationID: String
    public var messageID: String
    public var answer: String
    public var mode: String
    public var sources: [String]
    public var model: String
    public var status: Status
    /// Set when the engine failed: the code and message the client sees.
    public var error: EngineError?

    /// The fields every transport reports when a turn ends.
    public var doneJSON: JSON {
        var members: [(String, JSON)] = [
            ("conversation_id", .string(conversationID)), ("message_id", .string(messageID)),
            ("mode", .string(mode)), ("sources", .array(sources.map(JSON.string))), ("model", .string(model)),
            ("status", .string(status.rawValue)),
        ]
        if status == .stopped { members.append(("stopped", true)) }
        return .object(members)
    }
}

/// Receives a turn's tokens as they come; returning false stops the generation.
public protocol TurnSink: AnyObject {
    func token(_ text: String) -> Bool
    /// Called while the engine works; false stops the generation.
    func keepGoing() -> Bool
    /// Waits up to `duration` while the engine has nothing to send; false as soon as the turn
    /// should stop (see `GenerationSink.pause(for:)`).
    func pause(for duration: Duration) -> Bool
}

extension TurnSink {
    public func pause(for duration: Duration) -> Bool { SlicedPause.wait(duration, keepGoing: keepGoing) }
}
