import Foundation
@testable import PriviaEngines

/// The fake OpenAI-compatible provider (tests/fake_provider/fake_openai.py), started once for the
/// whole test process on a free loopback port. It exits when this process does (its stdin closes).
/// Tests run in parallel against it, each with its own tag in the model name (`stream:tag=…`).
/// `sharedTLS()` is a second one that also speaks HTTPS, with a certificate made at its start.
final class FakeProvider: @unchecked Sendable {
    let port: Int
    /// Its self-signed certificate, when it speaks HTTPS.
    let caFile: String?
    private let process: Process
    private let stdin: Pipe

    private static let lock = NSLock()
    nonisolated(unsafe) private static var instances: [Bool: FakeProvider] = [:]

    static func shared() throws -> FakeProvider { try shared(tls: false) }

    static func sharedTLS() throws -> FakeProvider { try shared(tls: true) }

    private static func shared(tls: Bool) throws -> FakeProvider {
        lock.lock()
        defer { lock.unlock() }
        if let instance = instances[tls] { return instance }
        let started = try FakeProvider(tls: tls)
        instances[tls] = started
        return started
    }

    private init(tls: Bool) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("tests/fake_provider/fake_openai.py").path
        let portFile = FileManager.default.temporaryDirectory.appendingPathComponent("fake-openai-\(UUID().uuidString).port").path
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "--port", "0", "--port-file", portFile, "--exit-with-stdin"]
        if tls {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fake-openai-tls-\(UUID().uuidString)").path
            process.arguments! += ["--tls-dir", directory]
            caFile = directory + "/cert.pem"
        } else {
            caFile = nil
        }
        stdin = Pipe()
        process.standardInput = stdin
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        var found: Int?
        while found == nil && Date() < deadline && process.isRunning {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8) {
                found = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            if found == nil { usleep(20_000) }
        }
        try? FileManager.default.removeItem(atPath: portFile)
        guard let found else {
            process.terminate()
            throw FakeProviderError(message: "the fake provider did not start")
        }
        port = found
    }

    var baseURL: String { "\(caFile == nil ? "http" : "https")://127.0.0.1:\(port)/v1" }

    /// A fresh tag, so a test finds its own requests in the shared log.
    static func tag(_ name: String = #function) -> String {
        "\(name.prefix { $0 != "(" })-\(UUID().uuidString.prefix(8))"
    }

    /// An engine for this fake; over HTTPS it trusts the fake's certificate, or with
    /// `systemTrust` only the system's certificate authorities.
    func engine(model: String, apiKey: String? = nil, idleTimeout: Double = 5, totalTimeout: Double = 20,
                headers: [String: String] = [:], handles: CurlHandlePool = .shared,
                systemTrust: Bool = false) -> OpenAICompatibleEngine {
        OpenAICompatibleEngine(.init(baseURL: baseURL, apiKey: apiKey.map(ProviderSecret.init), model: model,
                                     extraHeaders: headers, connectTimeoutSeconds: 2, idleTimeoutSeconds: idleTimeout,
                                     totalTimeoutSeconds: totalTimeout, proxy: "", caFile: systemTrust ? nil : caFile),
                               handles: handles)
    }

    /// The recorded requests whose model carries `tag`.
    func requests(tag: String) throws -> [[String: Any]] {
        let (status, body) = try Self.http("GET", port: port, path: "/_requests")
        guard status == 200, let all = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]] else {
            throw FakeProviderError(message: "bad /_requests answer \(status)")
        }
        return all.filter { ($0["model"] as? String)?.contains("tag=\(tag)") == true }
    }

    /// Polls until `condition` holds for the tag's requests (the fake notices a close within ~20 ms).
    func waitForRequests(tag: String, timeout: Double = 3, _ condition: ([[String: Any]]) -> Bool) throws -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(timeout)
        var current = try requests(tag: tag)
        while !condition(current) && Date() < deadline {
            usleep(20_000)
            current = try requests(tag: tag)
        }
        return current
    }

    /// Makes requests for exactly `model` behave as `behaviour`, `times` times.
    func override(model: String, behaviour: String, times: Int) throws {
        let body = String(data: try JSONSerialization.data(withJSONObject: ["model": model, "behaviour": behaviour, "times": times]),
                          encoding: .utf8)!
        _ = try Self.http("POST", port: port, path: "/_behaviour", body: body)
    }

    /// A minimal blocking HTTP/1.0 exchange on 127.0.0.1, so the tests need no HTTP client.
    static func http(_ method: String, port: Int, path: String, body: String = "") throws -> (Int, String) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FakeProviderError(message: "socket failed") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw FakeProviderError(message: "connect failed") }
        let request = "\(method) \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var response = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            response.append(contentsOf: buffer[0..<count])
        }
        let text = String(decoding: response, as: UTF8.self)
        let status = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        let payload = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return (status, payload)
    }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// A loopback port nothing listens on: bound, read, and closed again.
    static func unusedPort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 ? getsockname(fd, pointer, &length) : -1
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct FakeProviderError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Records what an engine streams; says stop after `stopAfterTokens` tokens, or once
/// `stopAfterSeconds` have passed (through `keepGoing`, as a client that leaves during silence).
final class RecordingSink: GenerationSink {
    private(set) var tokens: [String] = []
    var stopAfterTokens: Int?
    var stopAt: Date?
    private(set) var stopRequested: Date?
    /// How many tokens had arrived when the engine first said it would wait, and how often it said so.
    private(set) var tokensBeforeFirstWait: Int?
    private(set) var waits = 0
    /// The text of the `StreamedAnswer` the last generation into this sink ended with.
    var answer = ""

    init(stopAfterTokens: Int? = nil, stopAfterSeconds: Double? = nil) {
        self.stopAfterTokens = stopAfterTokens
        self.stopAt = stopAfterSeconds.map { Date().addingTimeInterval($0) }
    }

    func token(_ text: String) -> Bool {
        if let limit = stopAfterTokens, tokens.count >= limit {
            stopRequested = stopRequested ?? Date()
            return false
        }
        tokens.append(text)
        return true
    }

    func willWait() {
        tokensBeforeFirstWait = tokensBeforeFirstWait ?? tokens.count
        waits += 1
    }

    func keepGoing() -> Bool {
        if let stopAt, Date() >= stopAt {
            stopRequested = stopRequested ?? Date()
            return false
        }
        if let limit = stopAfterTokens, tokens.count >= limit { return false }
        return true
    }

    var text: String { tokens.joined() }
}

extension ChatEngine {
    /// A generation into `sink` through its own `StreamedAnswer`, as the chat service runs one;
    /// `sink.answer` holds the answer's text afterwards, whether it returned or threw.
    func generate(_ context: EngineContext, sink: RecordingSink) throws -> EngineResult {
        let answer = StreamedAnswer(sink, willWait: { [unowned sink] in sink.willWait() })
        defer { sink.answer = answer.text }
        return try generate(context, into: answer)
    }
}

func userContext(_ text: String = "hello there", model: String? = nil, temperature: Double? = nil,
                 maxTokens: Int? = nil) -> EngineContext {
    EngineContext(userID: "u1", conversationID: "c1", history: [ChatMessage(role: .user, content: text)],
                  model: model, temperature: temperature, maxTokens: maxTokens)
}
