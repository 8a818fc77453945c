import Foundation
import PriviaSupport

/// The models this server offers, the providers behind them, and the limits every request obeys.
///
/// Built once per process by `ModelCatalog.load(environment:)`, from, in this order:
/// 1. `PRIVIA_MODELS_FILE`: a JSON file (format below);
/// 2. else the one-provider shorthand `PRIVIA_OPENAI_BASE_URL`, `PRIVIA_OPENAI_MODEL`, and
///    `PRIVIA_OPENAI_API_KEY` or `PRIVIA_OPENAI_API_KEY_FILE` (optional: local servers need none);
/// 3. else the offline stub alone (one model, `stub`).
///
/// For example (the `//` notes are explanations; JSON has no comments):
/// ```
/// {
///   "providers": [{"id": "openrouter", "base_url": "https://openrouter.ai/api/v1",
///                  "api_key_env": "OPENROUTER_API_KEY",            // or "api_key_file": "keys/openrouter"
///                  "headers": {"HTTP-Referer": "https://chat.example.com", "X-Title": "Privia"}},
///                 {"id": "lab", "base_url": "https://vllm.internal:8000/v1",
///                  "ca_file": "lab-ca.pem"}],                    // trust this CA, not the system's
///   "models": [{"id": "gpt-4o-mini", "provider": "openrouter", "model": "openai/gpt-4o-mini",
///               "display_name": "GPT-4o mini", "input_price_per_million": 0.15,
///               "output_price_per_million": 0.6, "max_output_tokens": 4096},
///              {"id": "stub", "provider": "stub", "display_name": "Offline placeholder"}],
///   "default_model": "gpt-4o-mini",            // default: the first model
///   "fallback": ["stub"],                      // tried in order when a model fails before its first token
///   "connect_timeout_seconds": 10, "idle_timeout_seconds": 30, "total_timeout_seconds": 600,
///   "max_output_tokens": 4096, "max_temperature": 2.0,
///   "system_prompt": "You are Privia, a helpful assistant.", "history_token_budget": 6000,
///   "history_messages": 20                     // the most recent messages read for a turn
/// }
/// ```
/// The provider id `stub` is built in. A relative `api_key_file` or `ca_file` is read relative
/// to the config file. Keys are read at load; unknown fields are refused (a typo must not go unseen).
public struct ModelCatalog: Sendable {
    /// An OpenAI-compatible endpoint and its credentials.
    public struct Provider: Sendable {
        public var id: String
        public var baseURL: String
        public var apiKey: ProviderSecret?
        public var headers: [String: String]
        /// The certificate authorities (a PEM file) its certificate must chain to; nil: the system's.
        public var caFile: String?
        public init(id: String, baseURL: String, apiKey: ProviderSecret? = nil, headers: [String: String] = [:],
                    caFile: String? = nil) {
            self.id = id
            self.baseURL = baseURL
            self.apiKey = apiKey
            self.headers = headers
            self.caFile = caFile
        }
    }

    /// A model as users choose it: Privia's id, the provider's name for it, and its prices in
    /// currency units (the operator's) per million tokens.
    public struct Model: Sendable, Equatable {
        public var id: String
        public var provider: String
        public var providerModel: String
        public var displayName: String
        public var inputPricePerMillion: Double
        public var outputPricePerMillion: Double
        public var maxOutputTokens: Int?
        public init(id: String, provider: String, providerModel: String, displayName: String,
                    inputPricePerMillion: Double = 0, outputPricePerMillion: Double = 0, maxOutputTokens: Int? = nil) {
            self.id = id
            self.provider = provider
            self.providerModel = providerModel
            self.displayName = displayName
            self.inputPricePerMillion = inputPricePerMillion
            self.outputPricePerMillion = outputPricePerMillion
            self.maxOutputTokens = maxOutputTokens
        }

        /// `input / 1e6 × input price + output / 1e6 × output price`.
        public func cost(of usage: TokenUsage) -> Double {
            Double(usage.inputTokens) / 1_000_000 * inputPricePerMillion
                + Double(usage.outputTokens) / 1_000_000 * outputPricePerMillion
        }
    }

    public static let stubProviderID = "stub"

    public var providers: [Provider]
    /// In the order they are offered.
    public var models: [Model]
    public var defaultModelID: String
    /// Model ids tried, in order, after the chosen one fails before its first token.
    public var fallback: [String]
    public var connectTimeoutSeconds: Double = 10
    public var idleTimeoutSeconds: Double = 30
    public var totalTimeoutSeconds: Double = 600
    /// The most output tokens any request may ask for (and what is asked when it names none).
    public var maxOutputTokens: Int?
    public var maxTemperature: Double = 2
    public var systemPrompt: String?
    public var historyTokenBudget = 6000
    /// How many of a conversation's most recent messages a turn reads for the engine, which the
    /// token budget then trims. 20, as Privia's Python backend sends: every message read is a
    /// page read while turns commit, so a larger window costs every turn, whatever the model.
    public var historyMessages = 20
    /// The stub's delay per token (`PRIVIA_STUB_DELAY_MS`), for demos and tests.
    public var stubTokenDelayMilliseconds = 0

    public init(providers: [Provider], models: [Model], defaultModelID: String? = nil, fallback: [String] = []) {
        self.providers = providers
        self.models = models
        self.defaultModelID = defaultModelID ?? models.first?.id ?? "stub"
        self.fallback = fallback
    }

    /// The catalog when nothing is configured: the offline stub, alone.
    public static func stubOnly(tokenDelayMilliseconds: Int = 0) -> ModelCatalog {
        var catalog = ModelCatalog(providers: [], models: [Self.stubModel(displayName: nil)])
        catalog.stubTokenDelayMilliseconds = tokenDelayMilliseconds
        return catalog
    }

    static func stubModel(displayName: String?) -> Model {
        Model(id: "stub", provider: stubProviderID, providerModel: "stub", displayName: displayName ?? "Offline placeholder")
    }

    // MARK: What the API layer asks

    public func model(_ id: String) -> Model? { models.first { $0.id == id } }

    /// The model a turn gets when it names none.
    public var defaultModel: Model { model(defaultModelID) ?? models.first ?? Self.stubModel(displayName: nil) }

    /// The models to list to clients, in order, with their prices and which one is the default.
    public var offeredModels: [OfferedModel] {
        models.map {
            OfferedModel(id: $0.id, displayName: $0.displayName, inputPricePerMillion: $0.inputPricePerMillion,
                         outputPricePerMillion: $0.outputPricePerMillion, maxOutputTokens: outputTokenCap(for: $0),
                         isDefault: $0.id == defaultModelID)
        }
    }

    /// The output token cap for a model: the smaller of its own and the catalog's, if any.
    public func outputTokenCap(for model: Model) -> Int? {
        switch (model.maxOutputTokens, maxOutputTokens) {
        case let (own?, global?): return min(own, global)
        case let (own, global): return own ?? global
        }
    }

    /// Checks a turn's choices before anything is persisted: the model must be offered (nil
    /// means the default), the temperature within 0...`maxTemperature`, `maxTokens` within
    /// 1...the model's cap. Throws `ModelCatalogError` (the API layer answers 400 VALIDATION).
    @discardableResult
    public func validate(model id: String?, temperature: Double?, maxTokens: Int?) throws -> Model {
        let chosen = try resolve(id)
        if let temperature, !(temperature >= 0 && temperature <= maxTemperature) {
            throw ModelCatalogError.invalidTemperature(temperature, maximum: maxTemperature)
        }
        if let maxTokens {
            let cap = outputTokenCap(for: chosen)
            if maxTokens < 1 || maxTokens > (cap ?? Int.max) {
                throw ModelCatalogError.invalidMaxTokens(maxTokens, maximum: cap)
            }
        }
        return chosen
    }

    /// What a generation's usage cost on `model`; nil when the model is not in the catalog.
    public func cost(of usage: TokenUsage, model id: String) -> Double? {
        model(id)?.cost(of: usage)
    }

    /// The model for a requested id (nil or empty: the default).
    public func resolve(_ id: String?) throws -> Model {
        guard let id, !id.isEmpty else { return defaultModel }
        guard let found = model(id) else { throw ModelCatalogError.unknownModel(id) }
        return found
    }

    /// The chosen model, then the fallback models, each once.
    func chain(for id: String?) throws -> [Model] {
        let first = try resolve(id)
        var chain = [first]
        for next in fallback where !chain.contains(where: { $0.id == next }) {
            if let model = model(next) { chain.append(model) }
        }
        return chain
    }

    /// The engine that answers for one model of this catalog.
    public func engine(for model: Model) -> ChatEngine {
        guard model.provider != Self.stubProviderID, let provider = providers.first(where: { $0.id == model.provider }) else {
            return StubEngine(tokenDelayMilliseconds: stubTokenDelayMilliseconds)
        }
        return OpenAICompatibleEngine(.init(
            baseURL: provider.baseURL, apiKey: provider.apiKey, model: model.providerModel, extraHeaders: provider.headers,
            connectTimeoutSeconds: connectTimeoutSeconds, idleTimeoutSeconds: idleTimeoutSeconds,
            totalTimeoutSeconds: totalTimeoutSeconds, caFile: provider.caFile))
    }
}

/// A model as the API lists it.
public struct OfferedModel: Sendable, Equatable {
    public var id: String
    public var displayName: String
    public var inputPricePerMillion: Double
    public var outputPricePerMillion: Double
    public var maxOutputTokens: Int?
    public var isDefault: Bool
}

/// A request the catalog refuses, or a configuration it cannot load. The first three are the
/// client's mistake (400 VALIDATION); `invalidConfiguration` is the operator's, at start-up.
public enum ModelCatalogError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownModel(String)
    case invalidTemperature(Double, maximum: Double)
    case invalidMaxTokens(Int, maximum: Int?)
    case invalidConfiguration(String)

    public var message: String {
        switch self {
        case .unknownModel(let id): return "Unknown model '\(id)'"
        case .invalidTemperature(_, let maximum): return "temperature must be between 0 and \(maximum)"
        case .invalidMaxTokens(_, let maximum?): return "max_tokens must be between 1 and \(maximum)"
        case .invalidMaxTokens(_, nil): return "max_tokens must be at least 1"
        case .invalidConfiguration(let reason): return reason
        }
    }

    public var description: String { message }
}
