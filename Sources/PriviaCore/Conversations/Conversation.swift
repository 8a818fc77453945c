import PriviaSupport

/// A conversation as the list shows it.
public struct ConversationSummary: Sendable {
    public var id: String
    public var title: String
    public var status: String
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
        out.member("status", status)
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
    public var role: String
    public var content: String
    public var timestamp: String
    public var mode: String?
    public var sources: [String]?
    public var model: String?
    /// `complete`, `stopped` (the user stopped it or the client left) or `failed`.
    public var status: String
}

extension Message: JSONWritable {
    public func writeJSON(to out: inout JSONWriter) {
        out.object { out in
            out.member("id", id)
            out.member("role", role)
            out.member("content", content)
            out.member("timestamp", storedTime: timestamp)
            out.member("status", status)
            if let mode { out.member("mode", mode) }
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
