import PriviaSupport

/// Answers still streaming (`running_turns`, migration 0006): saved now and then as they grow,
/// so that when the process producing one dies, what it had produced becomes an `interrupted`
/// answer instead of being lost.
extension TurnStore {
    /// Saves the answer so far of a turn `owner` (this process) runs, with the usage to record if
    /// the process dies before the turn ends: one row per turn, written again at each save.
    /// `TurnStore.finish(progressSaved: true)` removes it.
    public func saveProgress(_ answer: TurnAnswer, userID: String, idempotencyKey: String?, usage: UsageEvent,
                             owner: ProcessIdentity = .current) throws {
        let content = answer.content.trimmingWhiteSpace
        try database.write { db in
            try db.run("""
                INSERT INTO running_turns (message_id, conversation_id, user_id, idempotency_key, owner_pid, owner_started,
                  content, mode, model, provider, input_tokens, output_tokens, latency_ms, time_to_first_token_ms, cost, saved_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (message_id) DO UPDATE SET content = excluded.content, output_tokens = excluded.output_tokens,
                  latency_ms = excluded.latency_ms, time_to_first_token_ms = excluded.time_to_first_token_ms,
                  cost = excluded.cost, saved_at = excluded.saved_at
                """, [answer.messageID, answer.conversationID, userID, idempotencyKey, Int(owner.pid), owner.started,
                      content, answer.mode.rawValue, answer.model, usage.provider, usage.inputTokens, usage.outputTokens,
                      usage.latencyMilliseconds, usage.timeToFirstTokenMilliseconds, usage.cost, StoredTime.now()])
        }
    }

    /// Turns the answers `owner` was streaming into `interrupted` ones, as last saved, each with
    /// its usage, its key's answer and its `message.finished` event: for a worker process that
    /// has died. Returns how many there were.
    @discardableResult
    public func interruptTurns(of owner: ProcessIdentity) throws -> Int {
        let arguments: [SQLBindable] = [Int(owner.pid), owner.started]
        // Most processes leave none: looking first takes no write lock.
        let any = try database.read { db in
            try db.first("SELECT 1 FROM running_turns WHERE owner_pid = ? AND owner_started = ? LIMIT 1", arguments) { _ in true }
        }
        guard any != nil else { return 0 }
        return try database.write { db in
            let running = try db.all("""
                SELECT message_id, conversation_id, user_id, idempotency_key, content, mode, model, provider,
                       input_tokens, output_tokens, latency_ms, time_to_first_token_ms, cost, saved_at
                FROM running_turns WHERE owner_pid = ? AND owner_started = ?
                """, arguments) { row in
                let answer = TurnAnswer(conversationID: row.string(1), messageID: row.string(0), content: row.string(4),
                                        mode: AnswerMode(rawValue: row.string(5)) ?? .chat, model: row.string(6), status: .interrupted)
                let usage = UsageEvent(userID: row.string(2), conversationID: answer.conversationID, messageID: answer.messageID,
                                       provider: row.string(7), model: answer.model, inputTokens: row.int(8), outputTokens: row.int(9),
                                       estimated: true, latencyMilliseconds: row.int(10), timeToFirstTokenMilliseconds: row.optionalInt(11),
                                       status: .interrupted, cost: row.double(12))
                return (answer: answer, usage: usage, key: row.optionalString(3), savedAt: row.string(13))
            }
            for turn in running {
                try store(db, turn.answer, userID: turn.usage.userID, idempotencyKey: turn.key, usage: turn.usage, at: turn.savedAt)
            }
            try db.run("DELETE FROM running_turns WHERE owner_pid = ? AND owner_started = ?", arguments)
            return running.count
        }
    }

    /// The same for every owner that no longer runs: what a pool that died whole (or a process
    /// whose death went unseen) left behind. The pool's master runs it as it starts.
    @discardableResult
    public func interruptTurnsOfDeadProcesses() throws -> Int {
        let owners = try database.read { db in
            try db.all("SELECT DISTINCT owner_pid, owner_started FROM running_turns") {
                ProcessIdentity(pid: Int32(truncatingIfNeeded: $0.int(0)), started: Int64($0.int(1)))
            }
        }
        var interrupted = 0
        for owner in owners where !owner.isAlive { interrupted += try interruptTurns(of: owner) }
        return interrupted
    }
}
