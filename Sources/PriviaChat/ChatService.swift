import Foundation
import PriviaCore
import PriviaEngines
import PriviaSupport

/// One chat turn, the same for REST, SSE and WebSocket: validate, authorize, persist the
/// prompt, stream from the engine, persist the answer and its metadata and usage.
///
/// No write transaction is held while the engine runs: the prompt is committed before it
/// starts and the answer after it ends.
public final class ChatService: Sendable {
    static let titleLength = 40

    private let database: Database
    private let conversations: ConversationStore
    private let engine: ChatEngine
    /// The models turns may ask for, and the usage ledger with its budget: the API lists and
    /// reports from these same ones.
    public let catalog: ModelCatalog
    public let usage: UsageLedger

    public init(database: Database, engine: ChatEngine, catalog: ModelCatalog = .stubOnly(), budget: UsageBudget = .unlimited) {
        self.database = database
        self.conversations = ConversationStore(database: database)
        self.engine = engine
        self.catalog = catalog
        self.usage = UsageLedger(database: database, budget: budget)
    }

    /// The title a first prompt gives an untitled conversation: its first 40 characters, then "...".
    /// Runs of white space (line breaks included) become one space: a title is one line.
    public static func title(fromPrompt prompt: String) -> String? {
        if let title = asciiTitle(fromPrompt: prompt) { return title.isEmpty ? nil : title }
        let text = prompt.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        guard !text.isEmpty else { return nil }
        return text.count > titleLength ? String(text.prefix(titleLength)) + "..." : text
    }

    /// The same title built from bytes when the prompt is ASCII (one byte, one character); nil otherwise.
    private static func asciiTitle(fromPrompt prompt: String) -> String? {
        var title: [UInt8] = []
        title.reserveCapacity(titleLength)
        var spacePending = false
        var truncated = false
        func append(_ byte: UInt8) {
            if title.count == titleLength { truncated = true } else { title.append(byte) }
        }
        for byte in prompt.utf8 {
            guard byte < 0x80 else { return nil }
            if byte == 0x20 || (0x09...0x0D).contains(byte) {
                spacePending = !title.isEmpty
                continue
            }
            if spacePending { append(0x20) }
            append(byte)
            spacePending = false
        }
        return String(decoding: title, as: UTF8.self) + (truncated ? "..." : "")
    }

    /// Everything before the engine runs, in one transaction: the budget, an idempotent replay,
    /// the conversation (the given one, else the user's empty one, else a new one), its title
    /// and status, the user's message, and the history the engine will see. The history is read
    /// here, from the pages the question's insert has just touched, rather than in a read
    /// transaction of its own.
    public func prepare(userID: String, _ request: TurnRequest) throws -> PreparedTurn {
        let blank = request.question.isBlank
        if blank && request.action != .regenerate { throw DomainError.invalid("Question is required") }
        if request.action != .ask && request.conversationID == nil {
            throw DomainError.invalid("conversation_id is required to \(request.action.rawValue)")
        }
        // A replay is looked up twice: first outside any transaction, so repeating a finished turn
        // takes no write lock and is never refused by the budget; then inside the write, where it
        // decides the race between two first sends of the same key.
        if let key = request.idempotencyKey, let replay = try replay(userID: userID, key: key, request) { return replay }
        try usage.checkBudget(userID: userID)
        return try database.write { db in
            if let key = request.idempotencyKey, let replay = try replay(db, userID: userID, key: key, request) { return replay }
            var turn: PreparedTurn
            switch request.action {
            case .ask: turn = try ask(db, userID: userID, request)
            case .regenerate, .edit: turn = try redo(db, userID: userID, request)
            }
            turn.history = try conversations.history(db, conversationID: turn.conversationID, limit: catalog.historyMessages)
            if let key = request.idempotencyKey {
                try db.run("INSERT INTO turn_requests (user_id, idempotency_key, conversation_id, user_message_id, created_at) VALUES (?, ?, ?, ?, ?)",
                           [userID, key, turn.conversationID, turn.userMessageID, StoredTime.now()])
            }
            return turn
        }
    }

    private func ask(_ db: SQLiteConnection, userID: String, _ request: TurnRequest) throws -> PreparedTurn {
        let now = StoredTime.now()
        let conversationID: String
        if let id = request.conversationID {
            conversationID = try countQuestion(db, userID: userID, in: try conversations.summary(db, userID: userID, id: id), request, at: now)
        } else if let empty = try conversations.empty(db, userID: userID) {
            conversationID = try countQuestion(db, userID: userID, in: empty, request, at: now)
        } else {
            let title = Self.title(fromPrompt: request.question) ?? ConversationStore.defaultTitle
            conversationID = try conversations.start(db, userID: userID, title: title, at: now).id
        }
        let messageID = newID()
        try db.run("INSERT INTO messages (id, conversation_id, role, content, timestamp, status) VALUES (?, ?, 'user', ?, ?, 'complete')",
                   [messageID, conversationID, request.question, now])
        return PreparedTurn(userID: userID, conversationID: conversationID, userMessageID: messageID, request: request)
    }

    /// Counts the question in a conversation that exists; an empty one becomes active and takes
    /// its title from the question unless it has one of its own. Returns the conversation's id.
    private func countQuestion(_ db: SQLiteConnection, userID: String, in conversation: ConversationSummary,
                               _ request: TurnRequest, at now: String) throws -> String {
        if conversation.status == "empty" {
            let untitled = conversation.title.isBlank
                || conversation.title == ConversationStore.defaultTitle
            let title = untitled ? (Self.title(fromPrompt: request.question) ?? conversation.title) : conversation.title
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
    private func redo(_ db: SQLiteConnection, userID: String, _ request: TurnRequest) throws -> PreparedTurn {
        let conversation = try conversations.summary(db, userID: userID, id: request.conversationID!)
        guard let (questionID, questionRow) = try db.first(
            "SELECT id, rowid FROM messages WHERE conversation_id = ? AND role = 'user' ORDER BY rowid DESC LIMIT 1",
            [conversation.id], { ($0.string(0), $0.int(1)) })
        else { throw DomainError.invalid("There is no question to \(request.action.rawValue) in this conversation") }
        try db.run("DELETE FROM messages WHERE conversation_id = ? AND rowid > ?", [conversation.id, questionRow])
        if request.action == .edit {
            try db.run("UPDATE messages SET content = ?, timestamp = ? WHERE id = ?", [request.question, StoredTime.now(), questionID])
        }
        try db.run("UPDATE conversations SET updated_at = ? WHERE id = ?", [StoredTime.now(), conversation.id])
        return PreparedTurn(userID: userID, conversationID: conversation.id, userMessageID: questionID, request: request)
    }

    private func replay(userID: String, key: String, _ request: TurnRequest) throws -> PreparedTurn? {
        try database.read { db in try replay(db, userID: userID, key: key, request) }
    }

    /// The first turn's result for a repeated key; a conflict while that turn is still running.
    private func replay(_ db: SQLiteConnection, userID: String, key: String, _ request: TurnRequest) throws -> PreparedTurn? {
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
        let outcome = TurnOutcome(conversationID: conversationID, messageID: message.id, answer: message.content,
                                  mode: message.mode ?? "", sources: message.sources ?? [], model: message.model ?? "",
                                  status: TurnOutcome.Status(rawValue: message.status) ?? .complete)
        return PreparedTurn(userID: userID, conversationID: conversationID, userMessageID: userMessageID, request: request, replay: outcome)
    }

    /// Runs the engine and persists whatever it produced, complete, stopped or failed, with its usage.
    /// A replayed turn sends the stored answer as one token and returns the stored outcome.
    public func generate(_ turn: PreparedTurn, sink: TurnSink) throws -> TurnOutcome {
        if let replay = turn.replay {
            if !replay.answer.isEmpty { _ = sink.token(replay.answer) }
            return replay
        }
        let history = turn.history
        let context = EngineContext(userID: turn.userID, conversationID: turn.conversationID, history: history,
                                    model: turn.request.model, temperature: turn.request.temperature,
                                    maxTokens: turn.request.maxTokens)
        let relay = SinkRelay(sink)
        let started = ContinuousClock.now
        var outcome: TurnOutcome
        var tokens: TokenUsage?
        do {
            let result = try engine.generate(context, sink: relay)
            tokens = result.usage
            outcome = TurnOutcome(conversationID: turn.conversationID, messageID: newID(), answer: result.content,
                                  mode: result.mode, sources: result.sources, model: result.model,
                                  status: relay.stopped ? .stopped : .complete)
        } catch let error as EngineError {
            outcome = TurnOutcome(conversationID: turn.conversationID, messageID: newID(), answer: error.partialContent ?? relay.produced,
                                  mode: "error", sources: [], model: turn.request.model ?? catalog.defaultModel.id,
                                  status: .failed, error: error)
        }
        let usage = meter(turn, outcome, tokens: tokens, history: history, started: started, firstToken: relay.firstTokenAt)
        try persistAnswer(outcome, turn: turn, usage: usage)
        return outcome
    }

    private func meter(_ turn: PreparedTurn, _ outcome: TurnOutcome, tokens: TokenUsage?, history: [ChatMessage],
                       started: ContinuousClock.Instant, firstToken: ContinuousClock.Instant?) -> UsageEvent {
        let counted = tokens ?? TokenUsage(inputTokens: TokenEstimate.tokens(in: history),
                                           outputTokens: TokenEstimate.tokens(in: outcome.answer), estimated: true)
        func milliseconds(_ duration: Duration) -> Int { Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000) }
        return UsageEvent(userID: turn.userID, conversationID: turn.conversationID, messageID: outcome.messageID,
                          provider: catalog.model(outcome.model)?.provider ?? "unknown", model: outcome.model,
                          inputTokens: counted.inputTokens, outputTokens: counted.outputTokens, estimated: counted.estimated,
                          latencyMilliseconds: milliseconds(ContinuousClock.now - started),
                          timeToFirstTokenMilliseconds: firstToken.map { milliseconds($0 - started) },
                          status: outcome.status.rawValue, cost: catalog.cost(of: counted, model: outcome.model) ?? 0)
    }

    private func persistAnswer(_ outcome: TurnOutcome, turn: PreparedTurn, usage event: UsageEvent) throws {
        let sources = JSON.array(outcome.sources.map(JSON.string)).text
        try database.write { db in
            try usage.record(event, in: db)
            let now = StoredTime.now()
            // The conversation may have been deleted while the answer streamed: then the update
            // changes nothing and there is nothing to keep.
            guard try db.run("UPDATE conversations SET updated_at = ?, message_count = message_count + 1 WHERE id = ?",
                             [now, outcome.conversationID]) == 1 else { return }
            try db.run("""
                INSERT INTO messages (id, conversation_id, role, content, timestamp, mode, sources, model, status)
                VALUES (?, ?, 'assistant', ?, ?, ?, ?, ?, ?)
                """, [outcome.messageID, outcome.conversationID, outcome.answer.trimmingWhiteSpace,
                      now, outcome.mode, sources, outcome.model, outcome.status.rawValue])
            if let key = turn.request.idempotencyKey {
                try db.run("UPDATE turn_requests SET assistant_message_id = ? WHERE user_id = ? AND idempotency_key = ?",
                           [outcome.messageID, turn.userID, key])
            }
            try WorkspaceEvents.record(db, userID: turn.userID, kind: "message.finished", payload: outcome.doneJSON)
        }
    }
}

/// Passes engine callbacks to the transport's sink, remembering what was produced, when the
/// first token came, and whether the transport asked to stop.
private final class SinkRelay: GenerationSink {
    private let sink: TurnSink
    private(set) var produced = ""
    private(set) var stopped = false
    private(set) var firstTokenAt: ContinuousClock.Instant?

    init(_ sink: TurnSink) { self.sink = sink }

    func token(_ text: String) -> Bool {
        guard !stopped else { return false }
        if firstTokenAt == nil { firstTokenAt = .now }
        produced += text
        if !sink.token(text) { stopped = true }
        return !stopped
    }

    /// A turn that waits on a model or streams slowly is long work: its thread stops counting
    /// among the process's active threads (see `ActiveThreads`) for the rest of the turn.
    func willWait() {
        ActiveThreads.leave()
    }

    func keepGoing() -> Bool {
        if !stopped && !sink.keepGoing() { stopped = true }
        return !stopped
    }

    func pause(for duration: Duration) -> Bool {
        willWait()
        if !stopped && !sink.pause(for: duration) { stopped = true }
        return !stopped
    }
}
