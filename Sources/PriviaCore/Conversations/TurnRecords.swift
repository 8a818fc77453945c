import PriviaSupport

/// What a turn does: ask a new question, answer the last question again, or replace the
/// last question and answer it.
public enum TurnAction: String, Sendable {
    case ask, regenerate, edit
}

/// A message of the history an engine sees: who wrote it and what it says.
public struct StoredMessage: Equatable, Sendable {
    public var role: MessageRole
    public var content: String

    public init(role: MessageRole, content: String) {
        self.role = role
        self.content = content
    }
}

/// A turn whose question is stored, ready for the engine; or, for a repeated idempotency key,
/// the first turn's answer to replay.
public struct StoredTurn: Sendable {
    public var conversationID: String
    public var userMessageID: String
    /// The last messages, the question included, oldest first. Empty for a replay.
    public var history: [StoredMessage]
    public var replay: TurnAnswer?
}

/// A turn's answer as it is stored, replayed and reported when the turn ends.
public struct TurnAnswer: Sendable {
    public var conversationID: String
    public var messageID: String
    public var content: String
    public var mode: AnswerMode
    public var sources: [String]
    public var model: String
    public var status: MessageStatus

    public init(conversationID: String, messageID: String, content: String, mode: AnswerMode, sources: [String] = [],
                model: String, status: MessageStatus) {
        self.conversationID = conversationID
        self.messageID = messageID
        self.content = content
        self.mode = mode
        self.sources = sources
        self.model = model
        self.status = status
    }

    /// The fields every transport reports when a turn ends, and the `message.finished` event carries.
    public var doneJSON: JSON {
        var members: [(String, JSON)] = [
            ("conversation_id", .string(conversationID)), ("message_id", .string(messageID)),
            ("mode", .string(mode.rawValue)), ("sources", .array(sources.map(JSON.string))), ("model", .string(model)),
            ("status", .string(status.rawValue)),
        ]
        if status == .stopped { members.append(("stopped", true)) }
        return .object(members)
    }
}
