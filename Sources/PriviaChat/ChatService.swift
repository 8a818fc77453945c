import Foundation
import PriviaCore
import PriviaEngines

/// One chat turn, the same for REST, SSE and WebSocket: validate, authorize, persist the
/// prompt, stream from the engine, persist the answer and its metadata.
///
/// No write transaction is held while the engine runs: the prompt is committed before it
/// starts and the answer after it ends.
public final class ChatService: Sendable {
    public static let historyLimit = 20
    static let titleLength = 40

    private let database: Database
    private let conversations: ConversationStore
    private let engine: ChatEngine

    public init(database: Database, engine: ChatEngine) {
        self.database = database
        self.conversations = ConversationStore(database: database)
        self.engine = engine
    }

    /// The title a first prompt gives an untitled conversation: its first 40 characters, then "...".
    /// Runs of white space (line breaks included) become one space: a title is one line.
    public static func title(fromPrompt prompt: String) -> String? {
        let text = prompt.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        guard !text.isEmpty else { return nil }
        return text.count > titleLength ? String(text.prefix(titleLength)) + "..." : text
    }

    /// Resolves the conversation (the given one, else the user's empty one, else a new one),
    /// titles and activates it, and commits the user's message, all in one transaction.
    public func prepare(userID: String, _ request: TurnRequest) throws -> PreparedTurn {
        guard !request.question.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw DomainError.invalid("Question is required")
        }
        return try database.write { db in
            let conversation: ConversationSummary
            if let id = request.conversationID {
                conversation = try conversations.summary(db, userID: userID, id: id)
            } else {
                conversation = try conversations.openEmpty(db, userID: userID, title: nil).0
            }
            let now = StoredTime.now()
            if conversation.status == "empty" {
                let untitled = conversation.title.trimmingCharacters(in: .whitespaces).isEmpty
                    || conversation.title == ConversationStore.defaultTitle
                let title = untitled ? (Self.title(fromPrompt: request.question) ?? conversation.title) : conversation.title
                try db.run("UPDATE conversations SET status = 'active', title = ?, updated_at = ? WHERE id = ?",
                           [title, now, conversation.id])
                if title != conversation.title {
                    try WorkspaceEvents.record(db, userID: userID, kind: "conversation.renamed",
                                               payload: ["conversation_id": .string(conversation.id), "title": .string(title)])
                }
            } else {
                try db.run("UPDATE conversations SET updated_at = ? WHERE id = ?", [now, conversation.id])
            }
            let messageID = newID()
            try db.run("INSERT INTO messages (id, conversation_id, role, content, timestamp, status) VALUES (?, ?, 'user', ?, ?, 'complete')",
                       [messageID, conversation.id, request.question, now])
            return PreparedTurn(userID: userID, conversationID: conversation.id, userMessageID: messageID, request: request)
        }
    }

    /// Runs the engine and persists whatever it produced, complete, stopped or failed.
    public func generate(_ turn: PreparedTurn, sink: TurnSink) throws -> TurnOutcome {
        let history = try conversations.recentMessages(conversationID: turn.conversationID, limit: Self.historyLimit)
            .map { ChatMessage(role: $0.role, content: $0.content) }
        let context = EngineContext(userID: turn.userID, conversationID: turn.conversationID, history: history,
                                    model: turn.request.model, temperature: turn.request.temperature,
                                    maxTokens: turn.request.maxTokens)
        let relay = SinkRelay(sink)
        var outcome: TurnOutcome
        do {
            let result = try engine.generate(context, sink: relay)
            outcome = TurnOutcome(conversationID: turn.conversationID, messageID: newID(), answer: result.content,
                                  mode: result.mode, sources: result.sources, model: result.model,
                                  status: relay.stopped ? .stopped : .complete)
        } catch let error as EngineError {
            outcome = TurnOutcome(conversationID: turn.conversationID, messageID: newID(), answer: error.partialContent ?? relay.produced,
                                  mode: "error", sources: [], model: turn.request.model ?? "", status: .failed, error: error)
        }
        try persistAnswer(outcome, userID: turn.userID)
        return outcome
    }

    private func persistAnswer(_ outcome: TurnOutcome, userID: String) throws {
        let sources = JSON.array(outcome.sources.map(JSON.string)).text
        try database.write { db in
            let now = StoredTime.now()
            // The conversation may have been deleted while the answer streamed: then there is nothing to keep.
            guard try db.first("SELECT 1 FROM conversations WHERE id = ?", [outcome.conversationID], { _ in true }) != nil else { return }
            try db.run("""
                INSERT INTO messages (id, conversation_id, role, content, timestamp, mode, sources, model, status)
                VALUES (?, ?, 'assistant', ?, ?, ?, ?, ?, ?)
                """, [outcome.messageID, outcome.conversationID, outcome.answer.trimmingCharacters(in: .whitespacesAndNewlines),
                      now, outcome.mode, sources, outcome.model, outcome.status.rawValue])
            try db.run("UPDATE conversations SET updated_at = ? WHERE id = ?", [now, outcome.conversationID])
            try WorkspaceEvents.record(db, userID: userID, kind: "message.finished", payload: outcome.doneJSON)
        }
    }
}

/// Passes engine callbacks to the transport's sink, remembering what was produced and whether
/// the transport asked to stop.
private final class SinkRelay: GenerationSink {
    private let sink: TurnSink
    private(set) var produced = ""
    private(set) var stopped = false

    init(_ sink: TurnSink) { self.sink = sink }

    func token(_ text: String) -> Bool {
        guard !stopped else { return false }
        produced += text
        if !sink.token(text) { stopped = true }
        return !stopped
    }

    func keepGoing() -> Bool {
        if !stopped && !sink.keepGoing() { stopped = true }
        return !stopped
    }
}
