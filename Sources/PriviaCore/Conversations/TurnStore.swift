import PriviaSupport

/// The rows of a chat turn: the question and the conversation it joins, the history the engine
/// sees, idempotent replays, the answer as it streams (`RunningTurns.swift`), and the answer
/// with its usage once it ends. Every call takes the user's id, and a conversation the user
/// does not own is `notFound`.
///
/// No write transaction is held while the engine runs: the question is committed before it
/// starts, the answer after it ends, and what streamed in between now and then on its own.
public final class TurnStore: Sendable {
    let database: Database
    private let conversations: ConversationStore

    public init(database: Database) {
        self.database = database
        conversations = ConversationStore(database: database)
    }

    // MARK: Before the engine runs

    /// The first turn's result for a repeated key, read outside any transaction, so repeating a
    /// finished turn takes no write lock; nil for a new key.
    public func replay(userID: String, key: String) throws -> StoredTurn? {
        try database.read { db in try replay(db, userID: userID, key: key) }
    }

    /// Everything before the engine runs, in one transaction: an idempotent replay (decided
    /// here between two first sends of the same key), the conversation (the given one, else the
    /// user's empty one, else a new one), its title and status, the user's message, the key, and
    /// the last `historyLimit` messages. The history is read here, from the pages the question's
    /// insert has just touched, rather than in a read transaction of its own.
    public func begin(userID: String, action: TurnAction, question: String, conversationID: String?,
                      idempotencyKey: String?, historyLimit: Int) throws -> StoredTurn {
        try database.write { db in
            if let key = idempotencyKey, let replay = try replay(db, userID: userID, key: key) { return replay }
            let (conversationID, userMessageID) = try action == .ask
                ? ask(db, userID: userID, question: question, conversationID: conversationID)
                : redo(db, userID: userID, action: action, question: question, conversationID: conversationID!)
            let history = try history(db, conversationID: conversationID, limit: historyLimit)
            if let key = idempotencyKey {
                try db.run("INSERT INTO turn_requests (user_id, idempotency_key, conversation_id, user_message_id, created_at) VALUES (?, ?, ?, ?, ?)",
                           [userID, key, conversationID, userMessageID, StoredTime.now()])
            }
            return StoredTurn(conversationID: conversationID, userMessageID: userMessageID, history: history)
        }
    }

    private func ask(_ db: SQLiteConnection, userID: String, question: String, conversationID: String?) throws -> (String, String) {
        let now = StoredTime.now()
        let id: String
        if let conversationID {
            id = try countQuestion(db, userID: userID, in: try conversations.summary(db, userID: userID, id: conversationID),
                                   question: question, at: now)
        } else if let empty = try conversations.empty(db, userID: userID) {
            id = try countQuestion(db, userID: userID, in: empty, question: question, at: now)
        } else {
            let title = ConversationStore.title(fromPrompt: question) ?? ConversationStore.defaultTitle
            id = try conversations.start(db, userID: userID, title: title, at: now).id
        }
        let messageID = newID()
        try db.run("INSERT INTO messages (id, conversation_id, role, content, timestamp, status) VALUES (?, ?, 'user', ?, ?, 'complete')",
                   [messageID, id, question, now])
        return (id, messageID)
    }

    /// Counts the question in a conversation that exists; an empty one becomes active and takes
    /// its title from the question unless it has one of its own. Returns the conversation's id.
    private func countQuestion(_ db: SQLiteConnection, userID: String, in conversation: ConversationSummary,
                               question: String, at now: String) throws -> String {
        if conversation.status == .empty {
            let untitled = conversation.title.isBlank || conversation.title == ConversationStore.defaultTitle
            let title = untitled ? (ConversationStore.title(fromPrompt: question) ?? conversation.title) : conversation.title
            try db.run("UPDATE conversations SET status = 'active', title = ?, updated_at = ?, message_count = message_count + 1 WHERE id = ?",
                       [title, now, conversation.id])
            if title != conversation.title {
                try WorkspaceEvents.record(db, userID: userID, kind: "conversation.renamed",
                                           payload: ["conversation_id": .string(conversation.id), "title": .string(title)])
            }
        } else {
            try db.run("UPDATE conversations SET updated_at = ?, message_count = message_count + 1 WHERE id = ?", [now, conversation.id])
        }
        return conversation.id
    }

    /// Regenerate: drop the last answer and answer the last question again. Edit: also replace
    /// the last question's text. Nothing before the last question is touched.
    private func redo(_ db: SQLiteConnection, userID: String, action: TurnAction, question: String,
                      conversationID: String) throws -> (String, String) {
        let conversation = try conversations.summary(db, userID: userID, id: conversationID)
        guard let (questionID, questionRow) = try db.first(
            "SELECT id, rowid FROM messages WHERE conversation_id = ? AND role = 'user' ORDER BY rowid DESC LIMIT 1",
            [conversation.id], { ($0.string(0), $0.int(1)) })
        else { throw DomainError.invalid("There is no question to \(action.rawValue) in this conversation") }
        try db.run("DELETE FROM messages WHERE conversation_id = ? AND rowid > ?", [conversation.id, questionRow])
        if action == .edit {
            try db.run("UPDATE messages SET content = ?, timestamp = ? WHERE id = ?", [question, StoredTime.now(), questionID])
        }
        try db.run("UPDATE conversations SET updated_at = ? WHERE id = ?", [StoredTime.now(), conversation.id])
        return (conversation.id, questionID)
    }

    /// The first turn's result for a repeated key; a conflict while that turn is still running.
    private func replay(_ db: SQLiteConnection, userID: String, key: String) throws -> StoredTurn? {
        guard let (conversationID, userMessageID, answerID) = try db.first(
            "SELECT conversation_id, user_message_id, assistant_message_id FROM turn_requests WHERE user_id = ? AND idempotency_key = ?",
            [userID, key], { ($0.string(0), $0.string(1), $0.optionalString(2)) })
        else { return nil }
        guard let answerID else {
            throw DomainError.conflict("A turn with this idempotency key is still being answered")
        }
        guard let message = try db.first("SELECT \(ConversationStore.messageColumns) FROM messages WHERE id = ?", [answerID],
                                          ConversationStore.message)
        else { throw DomainError.conflict("The answer for this idempotency key was replaced or deleted") }
        let answer = TurnAnswer(conversationID: conversationID, messageID: message.id, content: message.content,
                                mode: message.mode ?? .chat, sources: message.sources ?? [], model: message.model ?? "",
                                status: message.status)
        return StoredTurn(conversationID: conversationID, userMessageID: userMessageID, history: [], replay: answer)
    }

    /// The roles and texts of the last `limit` messages, oldest first: the history an engine sees.
    /// Read newest first, as the index gives them, and turned round here: sorting them back in
    /// SQL copied every text into a temporary b-tree.
    func history(_ db: SQLiteConnection, conversationID: String, limit: Int) throws -> [StoredMessage] {
        try db.all("SELECT role, content FROM messages WHERE conversation_id = ? ORDER BY rowid DESC LIMIT ?",
                   [conversationID, limit]) { StoredMessage(role: MessageRole(stored: $0.string(0)), content: $0.string(1)) }.reversed()
    }

    // MARK: When the engine is done

    /// Stores the answer, whatever its status, with its usage; records `message.finished` for the
    /// user's other sockets, and the answer for the turn's idempotency key. The conversation may
    /// have been deleted while the answer streamed: then only the usage is kept. `progressSaved`:
    /// the answer was saved while it streamed, and that row goes.
    public func finish(_ answer: TurnAnswer, userID: String, idempotencyKey: String?, usage: UsageEvent,
                       progressSaved: Bool = false) throws {
        try database.write { db in
            if progressSaved { try db.run("DELETE FROM running_turns WHERE message_id = ?", [answer.messageID]) }
            try store(db, answer, userID: userID, idempotencyKey: idempotencyKey, usage: usage, at: StoredTime.now())
        }
    }

    /// The rows of an answer that has ended, written at `time`.
    func store(_ db: SQLiteConnection, _ answer: TurnAnswer, userID: String, idempotencyKey: String?, usage: UsageEvent,
               at time: String) throws {
        try UsageLedger.record(usage, in: db)
        guard try db.run("UPDATE conversations SET updated_at = ?, message_count = message_count + 1 WHERE id = ?",
                         [time, answer.conversationID]) == 1 else { return }
        try db.run("""
            INSERT INTO messages (id, conversation_id, role, content, timestamp, mode, sources, model, status)
            VALUES (?, ?, 'assistant', ?, ?, ?, ?, ?, ?)
            """, [answer.messageID, answer.conversationID, answer.content.trimmingWhiteSpace,
                  time, answer.mode.rawValue, JSON.array(answer.sources.map(JSON.string)).text, answer.model, answer.status.rawValue])
        if let key = idempotencyKey {
            try db.run("UPDATE turn_requests SET assistant_message_id = ? WHERE user_id = ? AND idempotency_key = ?",
                       [answer.messageID, userID, key])
        }
        try WorkspaceEvents.record(db, userID: userID, kind: "message.finished", payload: answer.doneJSON)
    }
}
