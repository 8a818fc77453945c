import Foundation
import PriviaSupport
import Testing
@testable import PriviaEngines

@Suite struct ModelCatalogTests {
    static let file = """
    {
      "providers": [
        {"id": "router", "base_url": "https://openrouter.ai/api/v1", "api_key_env": "TEST_ROUTER_KEY",
         "headers": {"HTTP-Referer": "https://chat.example.com", "X-Title": "Privia"}},
        {"id": "local", "base_url": "http://127.0.0.1:11434/v1"}
      ],
      "models": [
        {"id": "big", "provider": "router", "model": "vendor/big", "display_name": "Big",
         "input_price_per_million": 3, "output_price_per_million": 15, "max_output_tokens": 8000},
        {"id": "small", "provider": "local", "model": "llama3.2", "display_name": "Small"},
        {"id": "stub", "provider": "stub"}
      ],
      "default_model": "small",
      "fallback": ["small", "stub"],
      "idle_timeout_seconds": 12,
      "max_output_tokens": 4000,
      "max_temperature": 1.5,
      "system_prompt": "Be brief.",
      "history_token_budget": 100,
      "history_messages": 6
    }
    """

    func load(_ text: String = Self.file, environment: [String: String] = ["TEST_ROUTER_KEY": "sk-test-1234"]) throws -> ModelCatalog {
        try ModelCatalog.decode(Data(text.utf8), settings: EnvironmentSettings(environment), directory: nil, source: "models.json")
    }

    @Test func nothingConfiguredOffersTheStubAlone() throws {
        let catalog = try ModelCatalog.load(environment: [:], stubTokenDelayMilliseconds: 7)
        #expect(catalog.offeredModels.map(\.id) == ["stub"])
        #expect(catalog.offeredModels.first?.isDefault == true)
        #expect(catalog.engine(for: catalog.defaultModel) is StubEngine)
        #expect(catalog.stubTokenDelayMilliseconds == 7)
        #expect(catalog.historyMessages == 20)
    }

    @Test func aModelsFileIsReadWhole() throws {
        let catalog = try load()
        #expect(catalog.offeredModels.map(\.id) == ["big", "small", "stub"])
        #expect(catalog.offeredModels.filter(\.isDefault).map(\.id) == ["small"])
        #expect(catalog.offeredModels[0] == OfferedModel(id: "big", displayName: "Big", inputPricePerMillion: 3,
                                                         outputPricePerMillion: 15, maxOutputTokens: 4000, isDefault: false))
        #expect(catalog.offeredModels[2].displayName == "stub")
        #expect(catalog.idleTimeoutSeconds == 12 && catalog.connectTimeoutSeconds == 10)
        #expect(catalog.systemPrompt == "Be brief." && catalog.historyTokenBudget == 100 && catalog.historyMessages == 6)
        #expect(try catalog.chain(for: nil).map(\.id) == ["small", "stub"])
        #expect(try catalog.chain(for: "big").map(\.id) == ["big", "small", "stub"])
        let engine = try #require(catalog.engine(for: catalog.model("big")!) as? OpenAICompatibleEngine)
        #expect(engine.configuration.apiKey?.value == "sk-test-1234")
        #expect(engine.configuration.model == "vendor/big")
        #expect(engine.configuration.extraHeaders["X-Title"] == "Privia")
        #expect(engine.configuration.idleTimeoutSeconds == 12)
    }

    @Test func theKeyNeverShowsInDescriptions() throws {
        let catalog = try load()
        let engine = catalog.engine(for: catalog.model("big")!)
        #expect(!"\(engine)".contains("sk-test-1234"))
        #expect(!String(reflecting: engine).contains("sk-test-1234"))
        #expect(!"\(catalog)".contains("sk-test-1234"))
    }

    @Test func mistakesInTheFileAreReported() throws {
        func failure(_ text: String, _ environment: [String: String] = ["TEST_ROUTER_KEY": "k"]) -> String? {
            do { _ = try load(text, environment: environment); return nil } catch let error as ModelCatalogError {
                return error.message
            } catch { return "\(error)" }
        }
        #expect(failure(Self.file, [:])?.contains("TEST_ROUTER_KEY is not set") == true)
        #expect(failure(Self.file.replacingOccurrences(of: "api_key_env", with: "api_key_enw"))?.contains("unknown field \"api_key_enw\"") == true)
        #expect(failure(Self.file.replacingOccurrences(of: "\"default_model\": \"small\"", with: "\"default_model\": \"nope\""))?.contains("default_model") == true)
        #expect(failure(#"{"models": [{"id": "x", "provider": "ghost", "model": "m"}]}"#)?.contains("unknown provider") == true)
        #expect(failure(#"{"models": []}"#)?.contains("empty") == true)
        #expect(failure(#"{"providers": [{"id": "p", "base_url": "ftp://x"}], "models": [{"id": "x", "provider": "p", "model": "m"}]}"#)?.contains("http(s)") == true)
        #expect(failure("not json")?.contains("JSON object") == true)
        #expect(failure(#"{"models": [{"id": 3, "provider": "stub"}]}"#)?.hasSuffix("wrong type at models[0].id") == true)
        #expect(failure(#"{"models": [{"provider": "stub"}]}"#)?.hasSuffix("missing \"id\" at models[0]") == true)
        #expect(failure(#"{"models": [], "history_messages": "6"}"#)?.hasSuffix("wrong type at history_messages") == true)
        #expect(failure(Self.file.replacingOccurrences(of: "\"history_messages\": 6", with: "\"history_messages\": 0"))?.contains("history_messages") == true)
    }

    @Test func theShorthandEnvironmentConfiguresOneProvider() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("privia-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyFile = directory.appendingPathComponent("key")
        try "sk-from-file\n".write(to: keyFile, atomically: true, encoding: .utf8)
        let catalog = try ModelCatalog.load(environment: [
            "PRIVIA_OPENAI_BASE_URL": "http://127.0.0.1:8080/v1", "PRIVIA_OPENAI_MODEL": "qwen2.5",
            "PRIVIA_OPENAI_API_KEY_FILE": keyFile.path,
        ])
        #expect(catalog.offeredModels.map(\.id) == ["qwen2.5"])
        let engine = try #require(catalog.engine(for: catalog.defaultModel) as? OpenAICompatibleEngine)
        #expect(engine.configuration.apiKey?.value == "sk-from-file")
        #expect(throws: ModelCatalogError.self) {
            try ModelCatalog.load(environment: ["PRIVIA_OPENAI_BASE_URL": "http://127.0.0.1:8080/v1"])
        }
        #expect(throws: ModelCatalogError.self) {
            try ModelCatalog.load(environment: ["PRIVIA_MODELS_FILE": "/x.json", "PRIVIA_OPENAI_MODEL": "m"])
        }
    }

    @Test func theModelsFileIsFoundThroughTheEnvironment() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("privia-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "sk-relative".write(to: directory.appendingPathComponent("router.key"), atomically: true, encoding: .utf8)
        let path = directory.appendingPathComponent("models.json")
        try "-----BEGIN CERTIFICATE-----\n".write(to: directory.appendingPathComponent("lab-ca.pem"), atomically: true, encoding: .utf8)
        try Self.file.replacingOccurrences(of: #""api_key_env": "TEST_ROUTER_KEY""#, with: #""api_key_file": "router.key""#)
            .replacingOccurrences(of: #""base_url": "http://127.0.0.1:11434/v1""#,
                                  with: #""base_url": "https://127.0.0.1:11434/v1", "ca_file": "lab-ca.pem""#)
            .write(to: path, atomically: true, encoding: .utf8)
        let catalog = try ModelCatalog.load(environment: ["PRIVIA_MODELS_FILE": path.path])
        #expect(catalog.providers.first?.apiKey?.value == "sk-relative")
        #expect(catalog.providers.first?.caFile == nil)
        let engine = try #require(catalog.engine(for: catalog.model("small")!) as? OpenAICompatibleEngine)
        #expect(engine.configuration.caFile == directory.appendingPathComponent("lab-ca.pem").path)

        try FileManager.default.removeItem(at: directory.appendingPathComponent("lab-ca.pem"))
        #expect(throws: ModelCatalogError.self) { try ModelCatalog.load(environment: ["PRIVIA_MODELS_FILE": path.path]) }
    }

    @Test func requestsAreValidatedAgainstTheCaps() throws {
        let catalog = try load()
        #expect(try catalog.validate(model: nil, temperature: nil, maxTokens: nil).id == "small")
        #expect(try catalog.validate(model: "big", temperature: 1.5, maxTokens: 4000).id == "big")
        #expect(throws: ModelCatalogError.unknownModel("gpt-9")) { try catalog.validate(model: "gpt-9", temperature: nil, maxTokens: nil) }
        #expect(throws: ModelCatalogError.invalidTemperature(1.6, maximum: 1.5)) { try catalog.validate(model: "big", temperature: 1.6, maxTokens: nil) }
        #expect(throws: ModelCatalogError.invalidTemperature(-0.1, maximum: 1.5)) { try catalog.validate(model: "big", temperature: -0.1, maxTokens: nil) }
        #expect(throws: ModelCatalogError.invalidMaxTokens(4001, maximum: 4000)) { try catalog.validate(model: "big", temperature: nil, maxTokens: 4001) }
        #expect(throws: ModelCatalogError.invalidMaxTokens(0, maximum: 4000)) { try catalog.validate(model: "small", temperature: nil, maxTokens: 0) }
        #expect(ModelCatalogError.unknownModel("gpt-9").message == "Unknown model 'gpt-9'")
    }

    @Test func pricesArePerMillionTokens() throws {
        let catalog = try load()
        let usage = TokenUsage(inputTokens: 1_000, outputTokens: 2_000, estimated: false)
        // 1000/1e6 × 3 + 2000/1e6 × 15 = 0.003 + 0.03
        #expect(abs(catalog.cost(of: usage, model: "big")! - 0.033) < 1e-12)
        #expect(catalog.cost(of: usage, model: "small") == 0)
        #expect(catalog.cost(of: usage, model: "nope") == nil)
        let million = TokenUsage(inputTokens: 1_000_000, outputTokens: 1_000_000, estimated: true)
        #expect(catalog.model("big")!.cost(of: million) == 18)
    }
}
