import Foundation
import PriviaCore
import PriviaEngines
import PriviaSupport

/// One chat turn, the same for REST, SSE and WebSocket: validate, check the budget, store the
/// question, stream from the engine into the transport's sink (saving the answer now and then
/// as it grows), store the answer and its usage. The rows are the `TurnStore`'s; this only
/// orchestrates.
public final class ChatService: Sendable {
    private let turns: TurnStore
    private let engine: ChatEngine
    /// The models turns may ask for, and the usage ledger with its budget: the API lists and
    /// reports from these same ones.
    public let catalog: ModelCatalog
    public let usage: UsageLedger
    /// How often an answer is saved while it streams (`AnswerProgress`).
    let progressInterval: Duration

    public init(database: Database, engine: ChatEngine, catalog: ModelCatalog = .stubOnly(), budget: UsageBudget = .unlimited,
                progressInterval: Duration = .seconds(1)) {
        self.turns = TurnStore(database: database)
        self.engine = engine
        self.catalog = catalog
        self.usage = UsageLedger(database: database, budget: budget)
        self.progressInterval = progressInterval
    }

    /// Everything before the engine runs: the request's checks, an idempotent replay, the budget,
    /// then the question and the history in one transaction (`TurnStore.begin`).
    public func prepare(userID: String, _ request: TurnRequest) throws -> PreparedTurn {
        if request.action != .regenerate && request.question.isBlank { throw DomainError.invalid("Question is required") }
        if request.action != .ask && request.conversationID == nil {
            throw DomainError.invalid("conversation_id is required to \(request.action.rawValue)")
        }
        // A replay is looked up twice: first outside any transaction, so repeating a finished turn
        // takes no write lock and is never refused by the budget; then inside the write, where it
        // decides the race between two first sends of the same key.
        if let key = request.idempotencyKey, let replay = try turns.replay(userID: userID, key: key) {
            return prepared(replay, userID: userID, request)
        }
        try usage.checkBudget(userID: userID)
        let stored = try turns.begin(userID: userID, action: request.action, question: request.question,
                                     conversationID: request.conversationID, idempotencyKey: request.idempotencyKey,
                                     historyLimit: catalog.historyMessages)
        return prepared(stored, userID: userID, request)
    }

    private func prepared(_ stored: StoredTurn, userID: String, _ request: TurnRequest) -> PreparedTurn {
        PreparedTurn(userID: userID, conversationID: stored.conversationID, userMessageID: stored.userMessageID,
                     request: request, history: stored.history.map(Self.chatMessage), replay: stored.replay)
    }

    static func chatMessage(_ message: StoredMessage) -> ChatMessage {
        let role: ChatMessage.Role = switch message.role {
        case .user: .user
        case .assistant: .assistant
        case .system: .system
        }
        return ChatMessage(role: role, content: message.content)
    }

    static func mode(_ mode: EngineResult.Mode) -> AnswerMode {
        switch mode {
        case .chat: .chat
        case .stub: .stub
        }
    }

    /// Runs the engine and stores whatever it produced, complete, stopped or failed, with its usage.
    /// A replayed turn sends the stored answer as one token and returns the stored outcome
    /// (which may be an interrupted one).
    public func generate(_ turn: PreparedTurn, sink: GenerationSink) throws -> TurnOutcome {
        if let replay = turn.replay {
            if !replay.content.isEmpty { _ = sink.token(replay.content) }
            return TurnOutcome(answer: replay)
        }
        let context = EngineContext(userID: turn.userID, conversationID: turn.conversationID, history: turn.history,
                                    model: turn.request.model, temperature: turn.request.temperature,
                                    maxTokens: turn.request.maxTokens)
        let started = ContinuousClock.now
        let messageID = newID()
        let model = turn.request.model ?? catalog.defaultModel.id
        let progress = AnswerProgress(startedAt: started, interval: progressInterval) { [self] answer in
            // Stored as is if this process dies before the turn ends. The engine says its mode
            // only at the end; until then the model's provider tells the stub's from a chat's.
            let mode: AnswerMode = catalog.model(model)?.provider == ModelCatalog.stubProviderID ? .stub : .chat
            let partial = TurnAnswer(conversationID: turn.conversationID, messageID: messageID, content: answer.text,
                                     mode: mode, model: model, status: .interrupted)
            try turns.saveProgress(partial, userID: turn.userID, idempotencyKey: turn.request.idempotencyKey,
                                   usage: meter(turn, partial, tokens: nil, started: started, firstToken: answer.firstTokenAt))
        }
        // A turn that waits on a model or streams slowly is long work: its thread stops counting
        // among the process's active threads (see `ActiveThreads`) for the rest of the turn.
        let answer = StreamedAnswer(sink, willWait: { ActiveThreads.leave() }, delivered: progress.delivered)
        var outcome: TurnOutcome
        var tokens: TokenUsage?
        do {
            let result = try engine.generate(context, into: answer)
            tokens = result.usage
            outcome = TurnOutcome(answer: TurnAnswer(
                conversationID: turn.conversationID, messageID: messageID, content: answer.text, mode: Self.mode(result.mode),
                sources: result.sources, model: result.model, status: answer.stopped ? .stopped : .complete))
        } catch let error as EngineError {
            outcome = TurnOutcome(answer: TurnAnswer(
                conversationID: turn.conversationID, messageID: messageID, content: answer.text, mode: .error,
                model: model, status: .failed), error: error)
        }
        let usage = meter(turn, outcome.answer, tokens: tokens, started: started, firstToken: answer.firstTokenAt)
        try turns.finish(outcome.answer, userID: turn.userID, idempotencyKey: turn.request.idempotencyKey, usage: usage,
                         progressSaved: progress.saved)
        return outcome
    }

    private func meter(_ turn: PreparedTurn, _ answer: TurnAnswer, tokens: TokenUsage?,
                       started: ContinuousClock.Instant, firstToken: ContinuousClock.Instant?) -> UsageEvent {
        let counted = tokens ?? TokenUsage(inputTokens: TokenEstimate.tokens(in: turn.history),
                                           outputTokens: TokenEstimate.tokens(in: answer.content), estimated: true)
        func milliseconds(_ duration: Duration) -> Int { Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000) }
        return UsageEvent(userID: turn.userID, conversationID: turn.conversationID, messageID: answer.messageID,
                          provider: catalog.model(answer.model)?.provider ?? "unknown", model: answer.model,
                          inputTokens: counted.inputTokens, outputTokens: counted.outputTokens, estimated: counted.estimated,
                          latencyMilliseconds: milliseconds(ContinuousClock.now - started),
                          timeToFirstTokenMilliseconds: firstToken.map { milliseconds($0 - started) },
                          status: answer.status, cost: catalog.cost(of: counted, model: answer.model) ?? 0)
    }
}
