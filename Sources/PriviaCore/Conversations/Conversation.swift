import PriviaSupport

/// Whether a conversation has had a question yet: "new chat" opens an `empty` one (at most
/// one per user), and its first question makes it `active`.
public enum ConversationStatus: String, Sendable {
    case empty, active

    /// A stored status; any other value (from another program) reads as `active`.
    init(stored: String) { self = Self(rawValue: stored) ?? .active }
}

/// Who wrote a message.
public enum MessageRole: String, Sendable {
    case user, assistant, system

    /// A stored role; any other value (from another program) reads as an answer.
    init(stored: String) { self = Self(rawValue: stored) ?? .assistant }
}

/// How a message ended: `complete`; `stopped` by the user or by the client leaving; `failed`
/// (the model failed; the answer holds what came before); `interrupted` (the process producing
/// it died; the answer holds what was saved as it streamed).
public enum MessageStatus: String, Sendable {
    case complete, stopped, failed, interrupted

    /// A stored status; any other value (from another program) reads as `complete`.
    init(stored: String) { self = Self(rawValue: stored) ?? .complete }
}

/// How an answer was made: by a model in a chat, by the offline stub, or not at all (`error`:
/// the model failed before it could answer).
public enum AnswerMode: String, Sendable {
    case chat, stub, error
}

/// A conversation as the list shows it.
public struct ConversationSummary: Sendable {
    public var id: String
    public var title: String
    public var status: ConversationStatus
    public var createdAt: String
    public var updatedAt: String
    public var messageCount: Int
}

extension ConversationSummary: JSONWritable {
    public func writeJSON(to out: inout JSONWriter) {
        out.object { out in writeMembers(to: &out) }
    }

    /// The members without the braces: a detail adds its messages among them.
    func writeMembers(to out: inout JSONWriter, messages: [Message]? = nil) {
        out.member("id", id)
        out.member("title", title)
        out.member("status", status.rawValue)
        if let messages {
            out.key("messages")
            out.array(messages)
        }
        out.member("created_at", storedTime: createdAt)
        out.member("updated_at", storedTime: updatedAt)
        out.member("message_count", messageCount)
    }
}

/// One message of a conversation.
public struct Message: Sendable {
    public var id: String
    public var role: MessageRole
    public var content: String
    public var timestamp: String
    public var mode: AnswerMode?
    public var sources: [String]?
    public var model: String?
    public var status: MessageStatus
}

extension Message: JSONWritable {
    public func writeJSON(to out: inout JSONWriter) {
        out.object { out in
            out.member("id", id)
            out.member("role", role.rawValue)
            out.member("content", content)
            out.member("timestamp", storedTime: timestamp)
            out.member("status", status.rawValue)
            if let mode { out.member("mode", mode.rawValue) }
            if let sources {
                out.key("sources")
                out.array(sources)
            }
            if let model { out.member("model", model) }
        }
    }
}

/// A conversation with its messages, in the order they were written.
public struct ConversationDetail: Sendable {
    public var summary: ConversationSummary
    public var messages: [Message]

    public init(summary: ConversationSummary, messages: [Message]) {
        self.summary = summary
        self.messages = messages
    }
}

extension ConversationDetail: JSONWritable {
    public func writeJSON(to out: inout JSONWriter) {
        out.object { out in summary.writeMembers(to: &out, messages: messages) }
    }
}
