import Foundation
import PriviaSupport
import Testing
import PriviaCore
import PriviaEngines
@testable import PriviaHTTP

/// An engine whose answer is too big for a database that may not grow: while `fillsDisk` is
/// set, it stops the writer growing the file (as a full disk does) once the prompt is stored.
final class DiskFillingEngine: ChatEngine, @unchecked Sendable {
    private let lock = NSLock()
    private var database: Database?
    private var filling = false
    /// Tokens whose text is far more than a page: storing it needs the file to grow.
    static let tokens = ["long ", "answer"] + Array(repeating: " and more", count: 8 * 1024)

    func fillDisk(of database: Database) { lock.withLock { self.database = database; filling = true } }
    func stopFilling() { lock.withLock { filling = false } }

    func generate(_ context: EngineContext, into answer: StreamedAnswer) throws -> EngineResult {
        if let database = lock.withLock({ filling ? database : nil }) {
            // max_page_count clamps to the file's size now: SQLite answers SQLITE_FULL past it.
            try database.write { try $0.execute("PRAGMA max_page_count = 1") }
        }
        for token in Self.tokens { _ = answer.token(token) }
        return EngineResult(mode: .chat, model: "stub")
    }
}

/// Free space a test sets by hand.
final class FixedFreeSpace: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes: UInt64
    init(_ bytes: UInt64) { self.bytes = bytes }
    var value: UInt64 {
        get { lock.withLock { bytes } }
        set { lock.withLock { bytes = newValue } }
    }
    var storage: StorageSpace { StorageSpace { self.value } }
}

@Suite struct StorageFullRouteTests {
    func makeRoom(_ app: TestApp) throws {
        try app.database.write { try $0.execute("PRAGMA max_page_count = 2147483646") }
    }

    func healthKeys(_ response: HTTPResponse) -> [String] {
        guard case .object(let members) = response.json else { return [] }
        return members.map(\.0).sorted()
    }

    @Test func aFullDiskIsA507WithItsOwnCodeNotAnUnknownError() {
        let full = APIError.from(SQLiteError(code: 13, message: "database or disk is full"))  // SQLITE_FULL
        #expect(full.status == 507 && full.code == .storageFull)
        #expect(full.response.json["code"]?.stringValue == "STORAGE_FULL")
        #expect(full.response.json["detail"]?.stringValue == "The server is out of storage space; try again later")
        // SQLITE_IOERR_SHMSIZE because the disk had no room, and because of something else.
        #expect(APIError.from(SQLiteError(code: 4874, message: "disk I/O error", systemErrno: ENOSPC)).code == .storageFull)
        let other = APIError.from(SQLiteError(code: 4874, message: "disk I/O error", systemErrno: EIO))
        #expect(other.status == 500 && other.code == .unknown)
    }

    /// The prompt is kept, the answer could not be: the turn is a 507, health says degraded,
    /// reads go on; once there is room the next turn works and health is ok again.
    @Test func aTurnWhoseAnswerCannotBeStoredIs507UntilThereIsRoomAgain() throws {
        let engine = DiskFillingEngine()
        let app = try TestApp(engine: engine, storage: FixedFreeSpace(1 << 30).storage)
        let (token, _) = try app.user()
        #expect(app.call("GET", "/api/health").status == 200)
        engine.fillDisk(of: app.database)

        let refused = app.call("POST", "/api/query", json: ["question": "Summarise the quarter"], token: token)
        #expect(refused.status == 507)
        #expect(refused.json["code"]?.stringValue == "STORAGE_FULL")
        let health = app.call("GET", "/api/health")
        #expect(health.status == 503 && health.json["status"]?.stringValue == "degraded")
        #expect(healthKeys(health) == ["env", "status", "timestamp", "uptime", "version"])

        let listed = app.call("GET", "/api/conversations", token: token)
        #expect(listed.status == 200)
        let id = try #require(listed.json.arrayValue?.first?["id"]?.stringValue)
        let messages = app.call("GET", "/api/conversations/\(id)", token: token).json["messages"]?.arrayValue ?? []
        #expect(messages.map { $0["role"]?.stringValue } == ["user"])

        engine.stopFilling()
        try makeRoom(app)
        let answered = app.call("POST", "/api/query", json: ["question": "Try again", "conversation_id": .string(id)], token: token)
        #expect(answered.status == 200)
        let kept = app.call("GET", "/api/conversations/\(id)", token: token).json["messages"]?.arrayValue ?? []
        #expect(kept.map { $0["role"]?.stringValue } == ["user", "user", "assistant"])
        let healthy = app.call("GET", "/api/health")
        #expect(healthy.status == 200 && healthy.json["status"]?.stringValue == "ok")
        #expect(healthKeys(healthy) == healthKeys(health))
    }

    /// Over SSE the status went out with the first token: the stream ends with an `error` event
    /// carrying STORAGE_FULL (and no `done`).
    @Test func aStreamWhoseAnswerCannotBeStoredEndsWithAStorageFullEvent() throws {
        let engine = DiskFillingEngine()
        let app = try TestApp(engine: engine, storage: FixedFreeSpace(1 << 30).storage)
        let (token, _) = try app.user()
        engine.fillDisk(of: app.database)
        let response = app.call("POST", "/api/stream", json: ["question": "Summarise the quarter"], token: token)
        #expect(response.status == 200)
        let stream = RecordingStream()
        response.run(into: stream)
        let events = stream.events
        #expect(events.filter { $0.event.isEmpty }.map(\.data) == DiskFillingEngine.tokens)
        #expect(!events.contains { $0.event == "done" })
        let error = try #require(events.last { $0.event == "error" })
        let body = try JSONParser.parse(error.data)
        #expect(body["code"]?.stringValue == "STORAGE_FULL")
        #expect(body["error"]?.stringValue == "The server is out of storage space; try again later")
        let listed = app.call("GET", "/api/conversations", token: token).json.arrayValue ?? []
        #expect(body["conversation_id"] == listed.first?["id"])
    }

    /// A nearly full disk is degraded even while small writes still fit (SQLite reuses the WAL
    /// pages it has), with the same status and body as any other degraded answer.
    @Test func healthIsDegradedWhileTheDiskIsNearlyFull() throws {
        let free = FixedFreeSpace(StorageSpace.lowWaterBytes - 1)
        let app = try TestApp(storage: free.storage)
        let degraded = app.call("GET", "/api/health")
        #expect(degraded.status == 503 && degraded.json["status"]?.stringValue == "degraded")
        free.value = 1 << 30
        let ok = app.call("GET", "/api/health")
        #expect(ok.status == 200 && ok.json["status"]?.stringValue == "ok")
        #expect(healthKeys(ok) == healthKeys(degraded))
    }
}
