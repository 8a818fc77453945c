import PriviaCore
import PriviaEngines
import PriviaSupport

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
    public var replay: TurnAnswer?
}

/// How a turn ended: its answer as stored and, when the engine failed, the code and message
/// the client sees.
public struct TurnOutcome: Sendable {
    public var answer: TurnAnswer
    public var error: EngineError?
}
