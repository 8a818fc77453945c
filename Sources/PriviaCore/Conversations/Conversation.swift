/// A conversation as the list shows it.
public struct ConversationSummary: Sendable {
    public var id: String
    public var title: String
    public var status: String
    public var createdAt: String
    public var updatedAt: String
    public var messageCount: Int

    public var json: JSON {
        ["id": .string(id), "title": .string(title), "status": .string(status),
         "created_at": .string(StoredTime.rfc3339(createdAt)), "updated_at": .string(StoredTime.rfc3339(updatedAt)),
         "message_count": .int(messageCount)]
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

    public var json: JSON {
        var members: [(String, JSON)] = [
            ("id", .string(id)), ("role", .string(role)), ("content", .string(content)),
            ("timestamp", .string(StoredTime.rfc3339(timestamp))), ("status", .string(status)),
        ]
        if let mode { members.append(("mode", .string(mode))) }
        if let sources { members.append(("sources", .array(sources.map(JSON.string)))) }
        if let model { members.append(("model", .string(model))) }
        return .object(members)
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

    public var json: JSON {
        ["id": .string(summary.id), "title": .string(summary.title), "status": .string(summary.status),
         "messages": .array(messages.map(\.json)),
         "created_at": .string(StoredTime.rfc3339(summary.createdAt)),
         "updated_at": .string(StoredTime.rfc3339(summary.updatedAt)),
         "message_count": .int(summary.messageCount)]
    }
}
