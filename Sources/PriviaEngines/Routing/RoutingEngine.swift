import Foundation

/// The engine the chat service runs: picks the model a turn asks for (or the catalog's default),
/// bounds the history, caps temperature and output tokens, and walks the fallback chain.
///
/// - A retryable failure before the first token moves on to the next model of the chain. A
///   `Retry-After` of at most `maxRetryAfterWaitSeconds` is honoured first: the engine waits
///   (asking the sink `keepGoing()` every 50 ms) and tries the same model once more.
/// - After the first token nothing is retried: the error is rethrown, and what was streamed
///   stays in the answer.
/// - A non-retryable failure (credentials, a refused request) is thrown at once.
/// - An unknown model throws `ModelCatalogError.unknownModel` before anything is sent; the API
///   layer should have called `ModelCatalog.validate` already and answered 400.
///
/// `EngineResult.model` is the catalog id of the model that answered (the one prices are keyed
/// by), which differs from the requested one after a fallback.
public struct RoutingEngine: ChatEngine {
    public let catalog: ModelCatalog
    public var maxRetryAfterWaitSeconds: Double = 2
    /// Told each time a model is given up for the next one, e.g. to log it.
    public var onFallback: (@Sendable (_ from: String, _ to: String, _ error: EngineError) -> Void)?
    private let engines: [String: any ChatEngine]

    public init(catalog: ModelCatalog) {
        self.init(catalog: catalog, engines: [:])
    }

    /// `engines` replaces the catalog's engine for the given model ids (tests).
    init(catalog: ModelCatalog, engines: [String: any ChatEngine]) {
        self.catalog = catalog
        var all = engines
        for model in catalog.models where all[model.id] == nil { all[model.id] = catalog.engine(for: model) }
        self.engines = all
    }

    public func generate(_ context: EngineContext, into answer: StreamedAnswer) throws -> EngineResult {
        let chain = try catalog.chain(for: context.model)
        var lastError: EngineError?
        for (position, model) in chain.enumerated() {
            guard let engine = engines[model.id] else { continue }
            var attempt = self.context(context, for: model)
            attempt.model = model.id
            var waited = false
            while true {
                guard answer.keepGoing() else { return stopped(model) }
                do {
                    var result = try engine.generate(attempt, into: answer)
                    result.model = model.id
                    return result
                } catch let error as EngineError {
                    guard !answer.hasStarted, error.retryable else { throw error }
                    if !waited, let delay = error.retryAfterSeconds, delay <= maxRetryAfterWaitSeconds {
                        waited = true
                        answer.willWait()
                        guard answer.pause(for: .milliseconds(Int(delay * 1000))) else { return stopped(model) }
                        continue
                    }
                    lastError = error
                    if position + 1 < chain.count { onFallback?(model.id, chain[position + 1].id, error) }
                }
                break
            }
        }
        throw lastError ?? EngineError(.provider, "no engine is configured for this model")
    }

    /// The context one model sees: the bounded history behind the system prompt, temperature
    /// and output tokens within the catalog's caps (asking for the cap when the turn named none).
    func context(_ context: EngineContext, for model: ModelCatalog.Model) -> EngineContext {
        var bounded = context
        bounded.history = HistoryWindow.bounded(context.history, systemPrompt: catalog.systemPrompt,
                                                tokenBudget: catalog.historyTokenBudget)
        bounded.temperature = context.temperature.map { min(max($0, 0), catalog.maxTemperature) }
        let cap = catalog.outputTokenCap(for: model)
        bounded.maxTokens = context.maxTokens.map { max(1, min($0, cap ?? Int.max)) } ?? cap
        return bounded
    }

    private func stopped(_ model: ModelCatalog.Model) -> EngineResult {
        EngineResult(mode: .chat, model: model.id, usage: nil)
    }
}

