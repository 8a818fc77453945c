import PriviaSupport
import Testing
@testable import PriviaCore

/// The list is written to JSON straight from SQLite's rows (`listJSON`): it must be the very
/// text each conversation's own summary writes, in the list's order, page for page, whatever
/// the titles hold.
@Suite struct ConversationListJSONTests {
    static let userID = "u-list"

    /// Conversations with awkward titles, one second apart, newest last.
    func seeded() throws -> ConversationStore {
        let database = try makeTestDatabase()
        try database.write { db in
            try db.run("INSERT INTO users (id, email, password_hash, role, created_at) VALUES (?, 'list@example.com', '', 'member', ?)",
                       [Self.userID, StoredTime.now()])
            let titles = ["plain", "a \"quoted\" word", #"back\slash"#, "line\nbreak\tand tab", "\u{1}control",
                          "café ☕️ 会议", "New conversation", "", String(repeating: "long ", count: 40)]
            for (index, title) in titles.enumerated() {
                let time = "2026-11-0\(1 + index / 5) 10:00:0\(index % 5).000000"
                try db.run("""
                    INSERT INTO conversations (id, user_id, title, created_at, updated_at, status, message_count)
                    VALUES (?, ?, ?, ?, ?, 'active', ?)
                    """, ["c-\(index)", Self.userID, title, time, time, index])
            }
            // Bytes that are not UTF-8, as another program could have stored them; and a time
            // written with its zone, as some do.
            try db.run("""
                INSERT INTO conversations (id, user_id, title, created_at, updated_at, status)
                VALUES ('c-bad', ?, CAST(X'6F6B20FF20C3' AS TEXT), '2026-10-01T08:00:00+00:00', '2026-10-01 08:00:00', 'empty')
                """, [Self.userID])
        }
        return ConversationStore(database: database)
    }

    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// Byte for byte (decoding both would repair what should not differ), said as text if not.
    func expectSame(_ written: [UInt8], _ expected: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        let same = written == expected
        #expect(same, "\(text(written)) is not \(text(expected))", sourceLocation: sourceLocation)
    }

    /// Newest activity first: the order the seeded times give.
    static let order = (0..<9).reversed().map { "c-\($0)" } + ["c-bad"]

    /// What the list must say for `ids`: each one's summary, read on its own.
    func expected(_ store: ConversationStore, _ ids: some Sequence<String>) throws -> [UInt8] {
        try ids.map { try store.summary(userID: Self.userID, id: $0) }.encoded()
    }

    @Test func theWholeListIsTheSummariesText() throws {
        let store = try seeded()
        let written = try store.listJSON(userID: Self.userID)
        #expect(written.nextCursor == nil)
        expectSame(written.json, try expected(store, Self.order))
        // Valid JSON, with the titles as they went in and the broken bytes repaired.
        let parsed = try JSONParser.parse(text(written.json))
        let titles = parsed.arrayValue?.compactMap { $0["title"]?.stringValue }
        #expect(titles?.contains("line\nbreak\tand tab") == true)
        #expect(titles?.contains("café ☕️ 会议") == true)
        #expect(titles?.last == "ok \u{FFFD} \u{FFFD}")
        #expect(parsed.arrayValue?.last?["created_at"]?.stringValue == "2026-10-01T08:00:00Z")
    }

    @Test func pagesFollowEachOtherThroughTheirCursors() throws {
        let store = try seeded()
        var cursor: String?
        var pages: [[String]] = []
        repeat {
            let written = try store.listJSON(userID: Self.userID, limit: 3, cursor: cursor)
            let page = Array(Self.order.dropFirst(3 * pages.count).prefix(3))
            expectSame(written.json, try expected(store, page))
            pages.append(page)
            cursor = written.nextCursor
        } while cursor != nil && pages.count < 10
        #expect(pages.count == 4 && pages.joined().elementsEqual(Self.order))
        #expect(try store.listJSON(userID: "someone else").json == Array("[]".utf8))
        #expect(throws: DomainError.self) { try store.listJSON(userID: Self.userID, limit: 3, cursor: "not a cursor") }
    }
}
