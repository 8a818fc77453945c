import Testing
@testable import PriviaCore

/// The list route writes its JSON straight from SQLite's rows (`listJSON`): it must be the
/// very text the summaries themselves write (`list`), page for page, whatever the titles hold.
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

    @Test func theWholeListIsTheSummariesText() throws {
        let store = try seeded()
        let listed = try store.list(userID: Self.userID)
        let written = try store.listJSON(userID: Self.userID)
        #expect(listed.items.count == 10 && listed.nextCursor == nil && written.nextCursor == nil)
        expectSame(written.json, listed.items.encoded())
        // Valid JSON, with the titles as they went in and the broken bytes repaired.
        let parsed = try JSONParser.parse(text(written.json))
        let titles = parsed.arrayValue?.compactMap { $0["title"]?.stringValue }
        #expect(titles?.contains("line\nbreak\tand tab") == true)
        #expect(titles?.contains("café ☕️ 会议") == true)
        #expect(titles?.last == "ok \u{FFFD} \u{FFFD}")
        #expect(parsed.arrayValue?.last?["created_at"]?.stringValue == "2026-10-01T08:00:00Z")
    }

    @Test func everyPageAndItsCursorMatch() throws {
        let store = try seeded()
        var cursor: String?
        var pages = 0
        repeat {
            let listed = try store.list(userID: Self.userID, limit: 3, cursor: cursor)
            let written = try store.listJSON(userID: Self.userID, limit: 3, cursor: cursor)
            expectSame(written.json, listed.items.encoded())
            #expect(written.nextCursor == listed.nextCursor)
            cursor = written.nextCursor
            pages += 1
        } while cursor != nil && pages < 10
        #expect(pages == 4)
        #expect(try store.listJSON(userID: "someone else").json == Array("[]".utf8))
    }
}
