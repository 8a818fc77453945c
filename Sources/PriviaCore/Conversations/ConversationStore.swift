import Foundation
import PriviaSupport

/// A user's conversations and their messages. Every call takes the owner's id, and anything
/// the owner does not own is `notFound`, exactly as if it did not exist.
public final class ConversationStore: Sendable {
    public static let defaultTitle = "New conversation"
    public static let maxTitleLength = 200

    private let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// `message_count` is kept on the row (migration 0005): the turn store adds to it as it
    /// inserts messages, triggers take deletes and moves into account.
    static let summaryColumns = "c.id, c.title, c.status, c.created_at, c.updated_at, c.message_count"
    static func summary(_ row: SQLRow) -> ConversationSummary {
        ConversationSummary(id: row.string(0), title: row.string(1), status: ConversationStatus(stored: row.string(2)), createdAt: row.string(3),
                            updatedAt: row.string(4), messageCount: row.int(5))
    }

    /// A row of `summaryColumns` written as the JSON of its `summary`, from SQLite's text.
    struct SummaryRow: JSONWritable {
        let row: SQLRow
        init(_ row: SQLRow) { self.row = row }

        func writeJSON(to out: inout JSONWriter) {
            out.object { out in
                out.key("id")
                row.withText(0) { out.string(utf8: $0) }
                out.key("title")
                row.withText(1) { out.string(utf8: $0) }
                out.key("status")
                row.withText(2) { out.string(utf8: $0) }
                out.key("created_at")
                row.withText(3) { out.storedTime(utf8: $0) }
                out.key("updated_at")
                row.withText(4) { out.storedTime(utf8: $0) }
                out.member("message_count", row.int(5))
            }
        }
    }

    /// The user's empty conversation if there is one, else a new one. The partial unique index
    /// allows one empty conversation per user, and BEGIN IMMEDIATE serialises the check and the
    /// insert across processes, so concurrent calls agree on one.
    public func openEmpty(userID: String, title: String? = nil) throws -> (ConversationSummary, created: Bool) {
        try database.write { db in try self.openEmpty(db, userID: userID, title: title) }
    }

    public func openEmpty(_ db: SQLiteConnection, userID: String, title: String?) throws -> (ConversationSummary, created: Bool) {
        if let existing = try empty(db, userID: userID) { return (existing, false) }
        let cleaned = try title.map(Self.validTitle) ?? Self.defaultTitle
        let now = StoredTime.now()
        let summary = ConversationSummary(id: newID(), title: cleaned, status: .empty, createdAt: now, updatedAt: now, messageCount: 0)
        try db.run("INSERT INTO conversations (id, user_id, title, created_at, updated_at, status) VALUES (?, ?, ?, ?, ?, 'empty')",
                   [summary.id, userID, summary.title, now, now])
        try WorkspaceEvents.record(db, userID: userID, kind: "conversation.created", payload: ["conversation": summary.json])
        return (summary, true)
    }

    /// The user's empty conversation, if there is one.
    public func empty(_ db: SQLiteConnection, userID: String) throws -> ConversationSummary? {
        try db.first("SELECT \(Self.summaryColumns) FROM conversations c WHERE c.user_id = ? AND c.status = 'empty' LIMIT 1",
                     [userID], Self.summary)
    }

    /// A conversation that starts with a first message the caller inserts: active, titled and
    /// counting that message from its first row, so the user's other tabs get one
    /// `conversation.created` with its title, and no rename after it.
    public func start(_ db: SQLiteConnection, userID: String, title: String, at now: String) throws -> ConversationSummary {
        let summary = ConversationSummary(id: newID(), title: title, status: .active, createdAt: now, updatedAt: now, messageCount: 1)
        try db.run("INSERT INTO conversations (id, user_id, title, created_at, updated_at, status, message_count) VALUES (?, ?, ?, ?, ?, 'active', 1)",
                   [summary.id, userID, summary.title, now, now])
        try WorkspaceEvents.record(db, userID: userID, kind: "conversation.created", payload: ["conversation": summary.json])
        return summary
    }

    /// A page of the user's conversations, newest activity first, as the JSON array of their
    /// summaries. `cursor` is the `nextCursor` of the previous page; without a limit, the whole
    /// list (what Privia's frontend expects).
    ///
    /// The rows are written straight into JSON, with no `String` or `ConversationSummary` per
    /// conversation on the way: the list is the API's most frequent answer, and making those
    /// was a visible share of its CPU.
    public func listJSON(userID: String, limit: Int? = nil, cursor: String? = nil) throws -> (json: [UInt8], nextCursor: String?) {
        var sql = "SELECT \(Self.summaryColumns) FROM conversations c WHERE c.user_id = ?"
        var arguments: [SQLBindable] = [userID]
        if let cursor {
            guard let (updatedAt, id) = Self.decodeCursor(cursor) else { throw DomainError.invalid("cursor is not valid") }
            sql += " AND (c.updated_at < ? OR (c.updated_at = ? AND c.id < ?))"
            arguments += [updatedAt, updatedAt, id]
        }
        sql += " ORDER BY c.updated_at DESC, c.id DESC"
        if let limit {
            // One row beyond the page: it only says there is a next one.
            sql += " LIMIT ?"
            arguments.append(limit + 1)
        }
        var out = JSONWriter(capacity: min(limit ?? 20, 200) * 192)
        var written = 0
        var lastCursor: String?
        var next: String?
        try database.read { db in
            try out.array { out in
                try db.query(sql, arguments) { row in
                    if let limit, written == limit {
                        next = lastCursor
                        return
                    }
                    written += 1
                    out.element(SummaryRow(row))
                    if written == limit { lastCursor = Self.encodeCursor(updatedAt: row.string(4), id: row.string(0)) }
                }
            }
        }
        return (out.bytes, next)
    }

    static func encodeCursor(updatedAt: String, id: String) -> String {
        Base64URL.encode(Array("\(updatedAt)|\(id)".utf8))
    }

    static func decodeCursor(_ cursor: String) -> (String, String)? {
        guard let bytes = Base64URL.decode(Substring(cursor)) else { return nil }
        let parts = String(decoding: bytes, as: UTF8.self).split(separator: "|", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        return (String(parts[0]), String(parts[1]))
    }

    public func summary(userID: String, id: String) throws -> ConversationSummary {
        try database.read { db in try self.summary(db, userID: userID, id: id) }
    }

    public func summary(_ db: SQLiteConnection, userID: String, id: String) throws -> ConversationSummary {
        guard let found = try db.first("SELECT \(Self.summaryColumns) FROM conversations c WHERE c.id = ? AND c.user_id = ?",
                                       [id, userID], Self.summary)
        else { throw DomainError.notFound("Conversation not found") }
        return found
    }

    public static let messageColumns = "id, role, content, timestamp, mode, sources, model, status"
    public static func message(_ row: SQLRow) -> Message {
        // Most answers have no sources: "[]" needs no parser.
        let sources = row.optionalString(5).flatMap { text in
            text == "[]" ? [] : (try? JSONParser.parse(text))?.arrayValue?.compactMap(\.stringValue)
        }
        return Message(id: row.string(0), role: MessageRole(stored: row.string(1)), content: row.string(2), timestamp: row.string(3),
                       mode: row.optionalString(4).flatMap(AnswerMode.init(rawValue:)), sources: sources, model: row.optionalString(6),
                       status: MessageStatus(stored: row.string(7)))
    }

    /// A conversation with all its messages, in the order they were written.
    public func detail(userID: String, id: String) throws -> ConversationDetail {
        try database.read { db in
            let summary = try self.summary(db, userID: userID, id: id)
            let messages = try db.all("SELECT \(Self.messageColumns) FROM messages WHERE conversation_id = ? ORDER BY rowid",
                                      [id], Self.message)
            return ConversationDetail(summary: summary, messages: messages)
        }
    }

    static func validTitle(_ raw: String) throws -> String {
        let title = raw.trimmingWhiteSpace
        guard (1...maxTitleLength).contains(title.count) else {
            throw DomainError.invalid("Title must be 1 to \(maxTitleLength) characters")
        }
        return title
    }

    public func rename(userID: String, id: String, title raw: String) throws -> ConversationDetail {
        let title = try Self.validTitle(raw)
        try database.write { db in
            _ = try self.summary(db, userID: userID, id: id)
            try db.run("UPDATE conversations SET title = ?, updated_at = ? WHERE id = ? AND title <> ?", [title, StoredTime.now(), id, title])
            try WorkspaceEvents.record(db, userID: userID, kind: "conversation.renamed",
                                       payload: ["conversation_id": .string(id), "title": .string(title)])
        }
        return try detail(userID: userID, id: id)
    }

    /// Deletes a conversation; its messages go with it (ON DELETE CASCADE).
    public func delete(userID: String, id: String) throws {
        try database.write { db in
            guard try db.run("DELETE FROM conversations WHERE id = ? AND user_id = ?", [id, userID]) == 1 else {
                throw DomainError.notFound("Conversation not found")
            }
            try WorkspaceEvents.record(db, userID: userID, kind: "conversation.deleted", payload: ["conversation_id": .string(id)])
        }
    }
}
