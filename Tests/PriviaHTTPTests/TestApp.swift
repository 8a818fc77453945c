import Foundation
import PriviaChat
import PriviaCore
import PriviaEngines
@testable import PriviaHTTP
import PriviaSupport

/// The API over a fresh, migrated database file, called with plain request values.
final class TestApp {
    let database: Database
    let api: PriviaAPI

    static let allowedOrigin = "https://app.example.test"

    init(engine: ChatEngine = StubEngine(), catalog: ModelCatalog = .stubOnly(), oauthSecret: String? = nil,
         budget: UsageBudget = .unlimited, storage: StorageSpace? = nil,
         sessionPolicy: SessionPolicy = SessionPolicy()) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("privia-http-\(newID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        database = try Database(path: directory + "/privia.db", storage: storage)
        _ = try database.withConnection { try Migrator(migrations: Migration.load(from: Self.migrations)).migrate($0) }
        let accounts = AccountService(database: database, hasher: PasswordHasher(iterations: 1000),
                                      signer: AccessTokenSigner(secretKey: String(repeating: "s", count: 32)), sessionPolicy: sessionPolicy)
        api = PriviaAPI(database: database, accounts: accounts,
                        chat: ChatService(database: database, engine: engine, catalog: catalog, budget: budget),
                        settings: .init(environment: "test", oauthExchangeSecret: oauthSecret, heartbeatSeconds: 0.05,
                                        allowedOrigins: [Self.allowedOrigin]))
    }

    static let migrations: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.path + "/Migrations/0001_privia_schema.sql") { return url.path + "/Migrations" }
        }
        fatalError("Migrations/ not found")
    }()

    func call(_ method: String, _ path: String, json: JSON? = nil, token: String? = nil,
              headers: [String: String] = [:], query: [String: String] = [:], body: [UInt8]? = nil) -> HTTPResponse {
        var allHeaders = headers
        if let token { allHeaders["authorization"] = "Bearer \(token)" }
        if json != nil { allHeaders["content-type"] = "application/json" }
        return api.respond(to: HTTPRequest(method: method, path: path, query: query, headers: allHeaders,
                                           body: body ?? json?.encoded() ?? []))
    }

    /// Signs up and signs in; returns the token and user id.
    func user(_ email: String = "ann-\(newID().suffix(12))@example.com", password: String = "correct horse") throws -> (token: String, id: String) {
        let signup = call("POST", "/api/auth/signup", json: ["email": .string(email), "password": .string(password)])
        precondition(signup.status == 201, "signup failed: \(signup.status)")
        let login = call("POST", "/api/auth/login", headers: ["content-type": "application/x-www-form-urlencoded"],
                         body: Array("username=\(email.replacingOccurrences(of: "@", with: "%40"))&password=\(password.replacingOccurrences(of: " ", with: "+"))".utf8))
        let body = try JSONParser.parse(login.bodyBytes)
        return (body["access_token"]!.stringValue!, body["user"]!["id"]!.stringValue!)
    }
}

extension HTTPResponse {
    var json: JSON { (try? JSONParser.parse(bodyBytes)) ?? .null }
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

/// A client connection that records what it is sent, and can leave after a number of sends.
final class RecordingStream: ResponseStream, @unchecked Sendable {
    private(set) var bytes: [UInt8] = []
    var leaveAfterSends: Int?
    /// Leaves as soon as what it was sent passes this test.
    var leaveWhen: ((String) -> Bool)?
    private var sends = 0

    func send(_ chunk: [UInt8]) -> Bool {
        if clientGone { return false }
        sends += 1
        bytes += chunk
        return true
    }

    func clientGone(within duration: Duration) -> Bool {
        let gone = (leaveAfterSends.map { sends >= $0 } ?? false) || (leaveWhen?(text) ?? false)
        if !gone && duration > .zero { Thread.sleep(forTimeInterval: Double(duration.components.attoseconds) / 1e18 + Double(duration.components.seconds)) }
        return gone
    }
    var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Parses the stream the way Privia's frontend does: line by line, `event:` then `data: `.
    var events: [(event: String, data: String)] {
        var result: [(String, String)] = []
        var event = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { event = ""; continue }
            if line.hasPrefix("event:") { event = line.dropFirst(6).trimmingCharacters(in: .whitespaces) }
            if line.hasPrefix("data: ") { result.append((event, String(line.dropFirst(6)))) }
        }
        return result
    }
}

extension HTTPResponse {
    /// Runs a streaming body against `stream`.
    func run(into stream: RecordingStream) {
        guard case .stream(let produce) = body else { return }
        produce(stream)
    }
}
