import Foundation
import PriviaSupport

extension ModelCatalog {
    /// The catalog the environment describes (see `ModelCatalog` for the sources and the file
    /// format). Throws `ModelCatalogError.invalidConfiguration` with a message for the operator;
    /// messages name variables and files, never key values.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment,
                            stubTokenDelayMilliseconds: Int = 0) throws -> ModelCatalog {
        try load(settings: EnvironmentSettings(environment), stubTokenDelayMilliseconds: stubTokenDelayMilliseconds)
    }

    public static func load(settings: EnvironmentSettings, stubTokenDelayMilliseconds: Int = 0) throws -> ModelCatalog {
        let modelsFile = settings.string("PRIVIA_MODELS_FILE")
        let baseURL = settings.string("PRIVIA_OPENAI_BASE_URL")
        let model = settings.string("PRIVIA_OPENAI_MODEL")
        let key: String?
        do { key = try settings.secret("PRIVIA_OPENAI_API_KEY") } catch let error as ConfigurationError {
            throw ModelCatalogError.invalidConfiguration(error.description)
        }
        let shorthand = [("PRIVIA_OPENAI_BASE_URL", baseURL), ("PRIVIA_OPENAI_MODEL", model), ("PRIVIA_OPENAI_API_KEY", key)]
            .filter { $0.1 != nil }.map(\.0)
        var catalog: ModelCatalog
        if let path = modelsFile {
            guard shorthand.isEmpty else {
                throw ModelCatalogError.invalidConfiguration(
                    "PRIVIA_MODELS_FILE and \(shorthand.joined(separator: ", ")) are both set; configure providers in one place")
            }
            let url = URL(fileURLWithPath: path)
            let data: Data
            do { data = try Data(contentsOf: url) } catch {
                throw ModelCatalogError.invalidConfiguration("PRIVIA_MODELS_FILE: cannot read \(path)")
            }
            catalog = try decode(data, settings: settings, directory: url.deletingLastPathComponent(), source: path)
        } else if !shorthand.isEmpty {
            guard let baseURL, let model else {
                throw ModelCatalogError.invalidConfiguration("PRIVIA_OPENAI_BASE_URL and PRIVIA_OPENAI_MODEL go together")
            }
            try checkBaseURL(baseURL, source: "PRIVIA_OPENAI_BASE_URL")
            catalog = ModelCatalog(providers: [Provider(id: "openai", baseURL: baseURL, apiKey: key.map(ProviderSecret.init))],
                                   models: [Model(id: model, provider: "openai", providerModel: model, displayName: model)])
        } else {
            catalog = .stubOnly()
        }
        catalog.stubTokenDelayMilliseconds = stubTokenDelayMilliseconds
        return catalog
    }

    /// Parses and checks a models file.
    static func decode(_ data: Data, settings: EnvironmentSettings, directory: URL?, source: String) throws -> ModelCatalog {
        func invalid(_ reason: String) -> ModelCatalogError { .invalidConfiguration("\(source): \(reason)") }
        let file: ModelsFile
        do {
            file = try ModelsFile(JSONParser.parse(Array(data)))
        } catch let failure as ModelsFile.Failure {
            throw invalid(failure.reason)
        } catch {
            throw invalid("must be a JSON object")
        }

        var providers: [Provider] = []
        for entry in file.providers ?? [] {
            guard !entry.id.isEmpty, entry.id != stubProviderID else { throw invalid("provider id \"\(entry.id)\" is reserved or empty") }
            guard !providers.contains(where: { $0.id == entry.id }) else { throw invalid("provider \"\(entry.id)\" is listed twice") }
            try checkBaseURL(entry.baseURL, source: "\(source): provider \"\(entry.id)\" base_url")
            for (name, value) in entry.headers ?? [:] {
                let tokenCharacters = CharacterSet(charactersIn: "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
                guard !name.isEmpty, name.unicodeScalars.allSatisfy(tokenCharacters.contains),
                      !value.contains(where: { $0 == "\r" || $0 == "\n" }) else {
                    throw invalid("provider \"\(entry.id)\" has an invalid header \"\(name)\"")
                }
                guard name.lowercased() != "authorization" else {
                    throw invalid("provider \"\(entry.id)\": put the key in api_key_env or api_key_file, not in headers")
                }
            }
            let key = try apiKey(environmentName: entry.apiKeyEnv, file: entry.apiKeyFile, settings: settings,
                                 directory: directory, source: "\(source): provider \"\(entry.id)\"")
            var caFile: String?
            if let path = entry.caFile {
                let url = path.hasPrefix("/") || directory == nil ? URL(fileURLWithPath: path) : directory!.appendingPathComponent(path)
                guard FileManager.default.isReadableFile(atPath: url.path) else {
                    throw invalid("provider \"\(entry.id)\": cannot read ca_file \(url.path)")
                }
                caFile = url.path
            }
            providers.append(Provider(id: entry.id, baseURL: entry.baseURL, apiKey: key, headers: entry.headers ?? [:],
                                      caFile: caFile))
        }

        var models: [Model] = []
        for entry in file.models {
            guard !entry.id.isEmpty else { throw invalid("a model has an empty id") }
            guard !models.contains(where: { $0.id == entry.id }) else { throw invalid("model \"\(entry.id)\" is listed twice") }
            let isStub = entry.provider == stubProviderID
            guard isStub || providers.contains(where: { $0.id == entry.provider }) else {
                throw invalid("model \"\(entry.id)\" names an unknown provider \"\(entry.provider)\"")
            }
            guard isStub || !(entry.model ?? "").isEmpty else { throw invalid("model \"\(entry.id)\" needs \"model\", the provider's name for it") }
            let input = entry.inputPricePerMillion ?? 0, output = entry.outputPricePerMillion ?? 0
            guard input >= 0, output >= 0, input.isFinite, output.isFinite else { throw invalid("model \"\(entry.id)\" has a negative price") }
            if let cap = entry.maxOutputTokens, cap < 1 { throw invalid("model \"\(entry.id)\": max_output_tokens must be at least 1") }
            models.append(Model(id: entry.id, provider: entry.provider, providerModel: isStub ? "stub" : entry.model!,
                                displayName: entry.displayName ?? entry.id, inputPricePerMillion: input,
                                outputPricePerMillion: output, maxOutputTokens: entry.maxOutputTokens))
        }
        guard !models.isEmpty else { throw invalid("\"models\" is empty") }
        if let id = file.defaultModel, !models.contains(where: { $0.id == id }) {
            throw invalid("default_model \"\(id)\" is not in models")
        }
        for id in file.fallback ?? [] where !models.contains(where: { $0.id == id }) {
            throw invalid("fallback model \"\(id)\" is not in models")
        }

        var catalog = ModelCatalog(providers: providers, models: models, defaultModelID: file.defaultModel, fallback: file.fallback ?? [])
        func positive(_ value: Double?, _ name: String) throws -> Double? {
            guard let value else { return nil }
            guard value > 0, value.isFinite else { throw invalid("\(name) must be positive") }
            return value
        }
        catalog.connectTimeoutSeconds = try positive(file.connectTimeoutSeconds, "connect_timeout_seconds") ?? 10
        catalog.idleTimeoutSeconds = try positive(file.idleTimeoutSeconds, "idle_timeout_seconds") ?? 30
        catalog.totalTimeoutSeconds = try positive(file.totalTimeoutSeconds, "total_timeout_seconds") ?? 600
        if let cap = file.maxOutputTokens, cap < 1 { throw invalid("max_output_tokens must be at least 1") }
        catalog.maxOutputTokens = file.maxOutputTokens
        if let maximum = file.maxTemperature, !(maximum >= 0 && maximum.isFinite) { throw invalid("max_temperature must be 0 or more") }
        catalog.maxTemperature = file.maxTemperature ?? 2
        catalog.systemPrompt = file.systemPrompt
        if let budget = file.historyTokenBudget, budget < 1 { throw invalid("history_token_budget must be at least 1") }
        catalog.historyTokenBudget = file.historyTokenBudget ?? 6000
        if let count = file.historyMessages, !(1...10_000).contains(count) { throw invalid("history_messages must be 1 to 10000") }
        catalog.historyMessages = file.historyMessages ?? 20
        return catalog
    }

    private static func checkBaseURL(_ text: String, source: String) throws {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              url.host?.isEmpty == false else {
            throw ModelCatalogError.invalidConfiguration("\(source) must be an http(s) URL")
        }
    }

    /// Reads a key from a named variable or a file (relative paths: from the config file's folder).
    private static func apiKey(environmentName: String?, file: String?, settings: EnvironmentSettings,
                               directory: URL?, source: String) throws -> ProviderSecret? {
        switch (environmentName, file) {
        case (nil, nil):
            return nil  // local servers (Ollama, llama.cpp) need no key
        case (_?, _?):
            throw ModelCatalogError.invalidConfiguration("\(source): give api_key_env or api_key_file, not both")
        case let (name?, nil):
            guard let key = (try? settings.secret(name))??.trimmingWhiteSpace, !key.isEmpty else {
                throw ModelCatalogError.invalidConfiguration("\(source): the variable \(name) is not set")
            }
            return ProviderSecret(key)
        case let (nil, path?):
            let url = path.hasPrefix("/") || directory == nil ? URL(fileURLWithPath: path) : directory!.appendingPathComponent(path)
            guard let data = try? Data(contentsOf: url),
                  let key = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !key.isEmpty else {
                throw ModelCatalogError.invalidConfiguration("\(source): cannot read a key from \(url.path)")
            }
            return ProviderSecret(key)
        }
    }
}

/// The models file, as written. Fields the format does not have are refused, so
/// `api_key_enw` fails loudly instead of silently.
private struct ModelsFile {
    struct Failure: Error { let reason: String }

    struct ProviderEntry {
        var id: String
        var baseURL: String
        var apiKeyEnv: String?
        var apiKeyFile: String?
        var headers: [String: String]?
        var caFile: String?
    }
    struct ModelEntry {
        var id: String
        var provider: String
        var model: String?
        var displayName: String?
        var inputPricePerMillion: Double?
        var outputPricePerMillion: Double?
        var maxOutputTokens: Int?
    }
    var providers: [ProviderEntry]?
    var models: [ModelEntry]
    var defaultModel: String?
    var fallback: [String]?
    var connectTimeoutSeconds: Double?
    var idleTimeoutSeconds: Double?
    var totalTimeoutSeconds: Double?
    var maxOutputTokens: Int?
    var maxTemperature: Double?
    var systemPrompt: String?
    var historyTokenBudget: Int?
    var historyMessages: Int?

    init(_ json: JSON) throws {
        let root = try Fields(json, at: "the top level", allowed: [
            "providers", "models", "default_model", "fallback", "connect_timeout_seconds", "idle_timeout_seconds",
            "total_timeout_seconds", "max_output_tokens", "max_temperature", "system_prompt", "history_token_budget",
            "history_messages",
        ], place: "")
        providers = try root.array("providers")?.enumerated().map { index, entry in
            let fields = try Fields(entry, at: "providers[\(index)]",
                                    allowed: ["id", "base_url", "api_key_env", "api_key_file", "headers", "ca_file"], place: " in a provider")
            return ProviderEntry(id: try fields.required("id"), baseURL: try fields.required("base_url"),
                                 apiKeyEnv: try fields.string("api_key_env"), apiKeyFile: try fields.string("api_key_file"),
                                 headers: try fields.stringMap("headers"), caFile: try fields.string("ca_file"))
        }
        guard let models = try root.array("models") else { throw Failure(reason: "missing \"models\" at the top level") }
        self.models = try models.enumerated().map { index, entry in
            let fields = try Fields(entry, at: "models[\(index)]", allowed: [
                "id", "provider", "model", "display_name", "input_price_per_million", "output_price_per_million", "max_output_tokens",
            ], place: " in a model")
            return ModelEntry(id: try fields.required("id"), provider: try fields.required("provider"), model: try fields.string("model"),
                              displayName: try fields.string("display_name"),
                              inputPricePerMillion: try fields.double("input_price_per_million"),
                              outputPricePerMillion: try fields.double("output_price_per_million"),
                              maxOutputTokens: try fields.int("max_output_tokens"))
        }
        defaultModel = try root.string("default_model")
        fallback = try root.array("fallback")?.enumerated().map { index, entry in
            guard let id = entry.stringValue else { throw Failure(reason: "wrong type at fallback[\(index)]") }
            return id
        }
        connectTimeoutSeconds = try root.double("connect_timeout_seconds")
        idleTimeoutSeconds = try root.double("idle_timeout_seconds")
        totalTimeoutSeconds = try root.double("total_timeout_seconds")
        maxOutputTokens = try root.int("max_output_tokens")
        maxTemperature = try root.double("max_temperature")
        systemPrompt = try root.string("system_prompt")
        historyTokenBudget = try root.int("history_token_budget")
        historyMessages = try root.int("history_messages")
    }

    /// One object of the file: typed reads that name the field's path when they fail.
    private struct Fields {
        let json: JSON
        let path: String

        init(_ json: JSON, at path: String, allowed: Set<String>, place: String) throws {
            guard case .object(let members) = json else {
                throw Failure(reason: path == "the top level" ? "must be a JSON object" : "wrong type at \(path)")
            }
            if let unknown = members.map(\.0).sorted().first(where: { !allowed.contains($0) }) {
                throw Failure(reason: "unknown field \"\(unknown)\"\(place)")
            }
            self.json = json
            self.path = path
        }

        private func value(_ key: String) -> JSON? {
            guard let value = json[key], !value.isNull else { return nil }
            return value
        }

        private func wrongType(_ key: String) -> Failure {
            Failure(reason: "wrong type at \(path == "the top level" ? key : "\(path).\(key)")")
        }

        func string(_ key: String) throws -> String? {
            guard let value = value(key) else { return nil }
            guard let text = value.stringValue else { throw wrongType(key) }
            return text
        }

        func required(_ key: String) throws -> String {
            guard let text = try string(key) else { throw Failure(reason: "missing \"\(key)\" at \(path)") }
            return text
        }

        func double(_ key: String) throws -> Double? {
            guard let value = value(key) else { return nil }
            guard let number = value.doubleValue else { throw wrongType(key) }
            return number
        }

        func int(_ key: String) throws -> Int? {
            guard let value = value(key) else { return nil }
            guard let number = value.intValue else { throw wrongType(key) }
            return number
        }

        func array(_ key: String) throws -> [JSON]? {
            guard let value = value(key) else { return nil }
            guard let elements = value.arrayValue else { throw wrongType(key) }
            return elements
        }

        func stringMap(_ key: String) throws -> [String: String]? {
            guard let value = value(key) else { return nil }
            guard case .object(let members) = value else { throw wrongType(key) }
            var map: [String: String] = [:]
            for (name, member) in members {
                guard let text = member.stringValue else { throw wrongType("\(key).\(name)") }
                map[name] = text
            }
            return map
        }
    }
}
