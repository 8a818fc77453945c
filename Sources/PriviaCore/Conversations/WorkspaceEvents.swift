import PriviaSupport

/// Records what changed in a user's workspace so the relay can push it to every open socket
/// of that user (two tabs never disagree). Written inside the change's own transaction.
public enum WorkspaceEvents {
    public static func record(_ db: SQLiteConnection, userID: String, kind: String, payload: JSON) throws {
        try db.run("INSERT INTO workspace_events (user_id, kind, payload, created_at) VALUES (?, ?, ?, ?)",
                   [userID, kind, payload.text, StoredTime.now()])
        // Keep the table small: events are only for sockets open now.
        if db.lastInsertRowID % 512 == 0 {
            try db.run("DELETE FROM workspace_events WHERE id <= ?", [db.lastInsertRowID - 4096])
        }
    }
}
