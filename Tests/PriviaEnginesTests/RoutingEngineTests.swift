import Foundation
import Testing
@testable import PriviaEngines

/// The routing engine against the fake provider: model choice, fallback, no retry after a token.
@Suite struct RoutingEngineTests {
    let fake: FakeProvider
    init() throws { fake = try FakeProvider.shared() }

    /// A catalog whose models are fake-provider behaviours (their provider model names).
    func catalog(_ models: [(id: String, behaviour: String)], fallback: [String], baseURL: String? = nil) -> ModelCatalog {
        var catalog = ModelCatalog(
            providers: [.init(id: "fake", baseURL: baseURL ?? fake.baseURL, apiKey: ProviderSecret("sk-fake"))],
            models: models.map { ModelCatalog.Model(id: $0.id, provider: "fake", providerModel: $0.behaviour, displayName: $0.id) },
            fallback: fallback)
        catalog.connectTimeoutSeconds = 2
        catalog.idleTimeoutSeconds = 2
        return catalog
    }

    /// Engines with the proxy off, so a developer's `https_proxy` cannot reroute loopback.
    func engine(_ catalog: ModelCatalog, overrides: [String: String] = [:]) -> RoutingEngine {
        var engines: [String: any ChatEngine] = [:]
        for model in catalog.models {
            let provider = catalog.providers.first { $0.id == model.provider }!
            engines[model.id] = OpenAICompatibleEngine(.init(
                baseURL: overrides[model.id] ?? provider.baseURL, apiKey: provider.apiKey, model: model.providerModel,
                connectTimeoutSeconds: 2, idleTimeoutSeconds: 2, totalTimeoutSeconds: 10, proxy: ""))
        }
        return RoutingEngine(catalog: catalog, engines: engines)
    }

    func fallsBack(from behaviour: String, baseURL: String? = nil) throws -> (EngineResult, String, [[String: Any]]) {
        let tag = FakeProvider.tag()
        let catalog = catalog([("primary", "\(behaviour):tag=\(tag)"), ("backup", "stream:tokens=3:tag=\(tag)")], fallback: ["backup"])
        let routing = engine(catalog, overrides: baseURL.map { ["primary": $0] } ?? [:])
        let sink = RecordingSink()
        let result = try routing.generate(userContext(model: "primary"), sink: sink)
        #expect(sink.text == sink.answer)
        // The fake records a request's status once it has finished writing the response, which
        // may be just after the engine has returned.
        return (result, sink.answer, try fake.waitForRequests(tag: tag) { $0.allSatisfy { $0["status"] is Int } })
    }

    /// A provider's turn is long work for its carrier: it says so before it waits for the first token.
    @Test func aProviderTurnSaysItWillWaitBeforeItsFirstToken() throws {
        let catalog = catalog([("primary", "stream:tokens=3:tag=\(FakeProvider.tag())")], fallback: [])
        let sink = RecordingSink()
        _ = try engine(catalog).generate(userContext(model: "primary"), sink: sink)
        #expect(sink.tokens.count == 3)
        #expect(sink.tokensBeforeFirstWait == 0)
    }

    @Test func fallsBackWhenTheProviderCannotBeReached() throws {
        let (result, answer, requests) = try fallsBack(from: "stream", baseURL: "http://127.0.0.1:\(FakeProvider.unusedPort())/v1")
        #expect(answer == "tok0 tok1 tok2 " && result.model == "backup")
        #expect(requests.count == 1)
    }

    @Test func fallsBackOnAServerError() throws {
        let (result, answer, requests) = try fallsBack(from: "fail-500")
        #expect(result.model == "backup" && answer == "tok0 tok1 tok2 ")
        #expect(requests.map { $0["status"] as? Int } == [500, 200])
    }

    @Test func fallsBackOnALongRateLimit() throws {
        let start = Date()
        let (result, _, requests) = try fallsBack(from: "rate-limit:retry_after=30")
        #expect(result.model == "backup")
        #expect(requests.map { $0["status"] as? Int } == [429, 200])
        #expect(Date().timeIntervalSince(start) < 2)
    }

    @Test func waitsOutAShortRetryAfterOnTheSameModel() throws {
        let tag = FakeProvider.tag()
        let primary = "stream:tokens=2:tag=\(tag)"
        try fake.override(model: primary, behaviour: "rate-limit:retry_after=0.3", times: 1)
        let routing = engine(catalog([("primary", primary), ("backup", "stream:tokens=3:tag=\(tag)-b")], fallback: ["backup"]))
        let start = Date()
        let sink = RecordingSink()
        let result = try routing.generate(userContext(), sink: sink)
        #expect(result.model == "primary" && sink.answer == "tok0 tok1 ")
        #expect(Date().timeIntervalSince(start) >= 0.3)
        #expect(try fake.requests(tag: tag).map { $0["status"] as? Int } == [429, 200])
    }

    @Test func neverRetriesAfterTheFirstToken() throws {
        let tag = FakeProvider.tag()
        let routing = engine(catalog([("primary", "drop:after=2:tag=\(tag)"), ("backup", "stream:tag=\(tag)")], fallback: ["backup"]))
        let sink = RecordingSink()
        do {
            _ = try routing.generate(userContext(model: "primary"), sink: sink)
            Issue.record("expected a failure")
        } catch let error as EngineError {
            #expect(error.code == .provider)
        }
        #expect(sink.answer == "tok0 tok1 " && sink.text == "tok0 tok1 ")
        #expect(try fake.requests(tag: tag).count == 1)
    }

    @Test func credentialsFailuresAreNotRetriedElsewhere() throws {
        let tag = FakeProvider.tag()
        let routing = engine(catalog([("primary", "unauthorized:tag=\(tag)"), ("backup", "stream:tag=\(tag)")], fallback: ["backup"]))
        #expect(throws: EngineError.self) { try routing.generate(userContext(), sink: RecordingSink()) }
        #expect(try fake.requests(tag: tag).count == 1)
    }

    @Test func whenEveryModelFailsTheLastErrorIsThrown() throws {
        let tag = FakeProvider.tag()
        let routing = engine(catalog([("primary", "fail-500:tag=\(tag)"), ("backup", "fail-502:tag=\(tag)")], fallback: ["backup"]))
        let sink = RecordingSink()
        do {
            _ = try routing.generate(userContext(), sink: sink)
            Issue.record("expected a failure")
        } catch let error as EngineError {
            #expect(error.message.contains("502") && error.retryable && sink.answer.isEmpty)
        }
    }

    @Test func anUnknownModelIsTheClientsMistake() throws {
        let routing = engine(catalog([("primary", "stream")], fallback: []))
        #expect(throws: ModelCatalogError.unknownModel("gpt-9")) { try routing.generate(userContext(model: "gpt-9"), sink: RecordingSink()) }
    }

    @Test func theProviderSeesTheBoundedHistoryAndTheCaps() throws {
        let tag = FakeProvider.tag()
        var catalog = catalog([("primary", "echo:tag=\(tag)")], fallback: [])
        catalog.systemPrompt = "Be brief."
        catalog.historyTokenBudget = 30
        catalog.maxOutputTokens = 100
        catalog.maxTemperature = 1
        let old = (0..<6).map { ChatMessage(role: $0 % 2 == 0 ? .user : .assistant, content: "message number \($0)") }
        var context = userContext()
        context.history = old + [ChatMessage(role: .user, content: "what now")]
        context.temperature = 1.7
        let sink = RecordingSink()
        let result = try engine(catalog).generate(context, sink: sink)
        #expect(sink.answer == "what now" && result.model == "primary")
        let body = try #require(try fake.requests(tag: tag).first?["body"] as? [String: Any])
        let messages = body["messages"] as? [[String: String]] ?? []
        // Budget 30: system (3+4) + "what now" (2+4) + "message number 5" (4+4) = 21; number 4 (8) would make 29, fits; 3 would not.
        #expect(messages.map { $0["content"] ?? "" } == ["Be brief.", "message number 4", "message number 5", "what now"])
        #expect(messages.first?["role"] == "system")
        #expect(body["temperature"] as? Double == 1 && body["max_tokens"] as? Int == 100)
    }

    @Test func theStubAnswersWhenNothingIsConfigured() throws {
        let routing = RoutingEngine(catalog: .stubOnly())
        let sink = RecordingSink()
        let result = try routing.generate(userContext(), sink: sink)
        #expect(sink.answer == StubEngine.reply && result.model == "stub" && result.mode == .stub)
    }

    @Test func aStopWhileWaitingOutRetryAfterEndsQuietly() throws {
        let tag = FakeProvider.tag()
        let routing = engine(catalog([("primary", "rate-limit:retry_after=2:tag=\(tag)")], fallback: []))
        let sink = RecordingSink(stopAfterSeconds: 0.3)
        let start = Date()
        _ = try routing.generate(userContext(), sink: sink)
        #expect(sink.answer.isEmpty)
        #expect(Date().timeIntervalSince(start) < 1)
    }
}
