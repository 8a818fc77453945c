import Foundation

extension ModelCatalog {
    /// The catalog the environment describes (see `ModelCatalog` for the sources and the file
    /// format). Throws `ModelCatalogError.invalidConfiguration` with a message for the operator;
    /// messages name variables and files, never key values.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment,
                            stubTokenDelayMilliseconds: Int = 0) throws -> ModelCatalog {
        func value(_ name: String) -> String? {
            environment[name].flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
        }
        let shorthand = ["PRIVIA_OPENAI_BASE_URL", "PRIVIA_OPENAI_MODEL", "PRIVIA_OPENAI_API_KEY", "PRIVIA_OPENAI_API_KEY_FILE"]
            .filter { value($0) != nil }
        var catalog: ModelCatalog
        if let path = value("PRIVIA_MODELS_FILE") {
            guard shorthand.isEmpty else {
                throw ModelCatalogError.invalidConfiguration(
                    "PRIVIA_MODELS_FILE and \(shorthand.joined(separator: ", ")) are both set; configure providers in one place")
            }
            let url = URL(fileURLWithPath: path)
            let data: Data
            do { data = try Data(contentsOf: url) } catch {
                throw ModelCatalogError.invalidConfiguration("PRIVIA_MODELS_FILE: cannot read \(path)")
            }
            catalog = try decode(data, environment: environment, directory: url.deletingLastPathComponent(), source: path)
        } else if !shorthand.isEmpty {
            guard let baseURL = value("PRIVIA_OPENAI_BASE_URL"), let model = value("PRIVIA_OPENAI_MODEL") else {
                throw ModelCatalogError.invalidConfiguration("PRIVIA_OPENAI_BASE_URL and PRIVIA_OPENAI_MODEL go together")
            }
            try checkBaseURL(baseURL, source: "PRIVIA_OPENAI_BASE_URL")
            let key = try apiKey(environmentName: value("PRIVIA_OPENAI_API_KEY") != nil ? "PRIVIA_OPENAI_API_KEY" : nil,
                                 file: value("PRIVIA_OPENAI_API_KEY_FILE"), environment: environment,
                                 directory: nil, source: "PRIVIA_OPENAI_API_KEY_FILE")
            catalog = ModelCatalog(providers: [Provider(id: "openai", baseURL: baseURL, apiKey: key)],
                                   models: [Model(id: model, provider: "openai", providerModel: model, displayName: model)])
        } else {
            catalog = .stubOnly()
        }
        catalog.stubTokenDelayMilliseconds = stubTokenDelayMilliseconds
        return catalog
    }

    /// Parses and checks a models file.
    static func decode(_ data: Data, environment: [String: String], directory: URL?, source: String) throws -> ModelCatalog {
        func invalid(_ reason: String) -> ModelCatalogError { .invalidConfiguration("\(source): \(reason)") }
        try checkFields(data, invalid)
        let file: ModelsFile
        do {
            file = try JSONDecoder().decode(ModelsFile.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw invalid("missing \"\(key.stringValue)\" at \(path(context))")
        } catch let DecodingError.typeMismatch(_, context) {
            throw invalid("wrong type at \(path(context))")
        } catch let DecodingError.valueNotFound(_, context) {
            throw invalid("missing value at \(path(context))")
        } catch {
            throw invalid("not valid JSON")
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
            let key = try apiKey(environmentName: entry.apiKeyEnv, file: entry.apiKeyFile, environment: environment,
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
    private static func apiKey(environmentName: String?, file: String?, environment: [String: String],
                               directory: URL?, source: String) throws -> ProviderSecret? {
        switch (environmentName, file) {
        case (nil, nil):
            return nil  // local servers (Ollama, llama.cpp) need no key
        case (_?, _?):
            throw ModelCatalogError.invalidConfiguration("\(source): give api_key_env or api_key_file, not both")
        case let (name?, nil):
            guard let key = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !key.isEmpty else {
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

    /// Refuses fields the format does not have, so `api_key_enw` fails loudly instead of silently.
    private static func checkFields(_ data: Data, _ invalid: (String) -> ModelCatalogError) throws {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw invalid("must be a JSON object")
        }
        func check(_ object: Any?, _ allowed: Set<String>, _ place: String) throws {
            guard let object = object as? [String: Any] else { return }
            if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
                throw invalid("unknown field \"\(unknown)\"\(place)")
            }
        }
        try check(root, Set(ModelsFile.CodingKeys.allCases.map(\.stringValue)), "")
        for provider in root["providers"] as? [Any] ?? [] {
            try check(provider, Set(ModelsFile.ProviderEntry.CodingKeys.allCases.map(\.stringValue)), " in a provider")
        }
        for model in root["models"] as? [Any] ?? [] {
            try check(model, Set(ModelsFile.ModelEntry.CodingKeys.allCases.map(\.stringValue)), " in a model")
        }
    }

    private static func path(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        return path.isEmpty ? "the top level" : path
    }
}

/// The models file, as written.
private struct ModelsFile: Decodable {
    struct ProviderEntry: Decodable {
        var id: String
        var baseURL: String
        var apiKeyEnv: String?
        var apiKeyFile: String?
        var headers: [String: String]?
        var caFile: String?
        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, headers, baseURL = "base_url", apiKeyEnv = "api_key_env", apiKeyFile = "api_key_file", caFile = "ca_file"
        }
    }
    struct ModelEntry: Decodable {
        var id: String
        var provider: String
        var model: String?
        var displayName: String?
        var inputPricePerMillion: Double?
        var outputPricePerMillion: Double?
        var maxOutputTokens: Int?
        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, provider, model, displayName = "display_name", inputPricePerMillion = "input_price_per_million"
            case outputPricePerMillion = "output_price_per_million", maxOutputTokens = "max_output_tokens"
        }
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
    enum CodingKeys: String, CodingKey, CaseIterable {
        case providers, models, fallback
        case defaultModel = "default_model", connectTimeoutSeconds = "connect_timeout_seconds"
        case idleTimeoutSeconds = "idle_timeout_seconds", totalTimeoutSeconds = "total_timeout_seconds"
        case maxOutputTokens = "max_output_tokens", maxTemperature = "max_temperature"
        case systemPrompt = "system_prompt", historyTokenBudget = "history_token_budget"
        case historyMessages = "history_messages"
    }
}
