import Foundation
import PriviaSupport
import Testing
import PriviaChat
@testable import PriviaCore
import PriviaEngines

/// An answer is saved as it streams, so that when its process dies what it had produced is kept
/// as an `interrupted` answer, and the conversation goes on.
@Suite struct RunningTurnsTests {
    final class Discard: GenerationSink {
        func token(_ text: String) -> Bool { true }
        func keepGoing() -> Bool { true }
    }

    /// Notes, at each token it is sent, the answer saved so far (as the master would find it).
    final class WatchingSink: GenerationSink {
        let database: Database
        var sent = ""
        var saved: [String] = []
        var rowsSeen = 0
        init(_ database: Database) { self.database = database }

        func token(_ text: String) -> Bool {
            sent += text
            let rows = (try? database.read { db in try db.all("SELECT content FROM running_turns") { $0.string(0) } }) ?? []
            rowsSeen = max(rowsSeen, rows.count)
            if let content = rows.first, content != saved.last { saved.append(content) }
            return true
        }
        func keepGoing() -> Bool { true }
    }

    func makeUser(_ database: Database) throws -> String {
        let userID = "u-\(newID())"
        try database.write { db in
            try db.run("INSERT INTO users (id, email, password_hash, role, created_at) VALUES (?, ?, '', 'member', ?)",
                       [userID, "\(userID)@example.com", StoredTime.now()])
        }
        return userID
    }

    func runningRows(_ database: Database) throws -> Int {
        try database.read { db in try db.first("SELECT count(*) FROM running_turns") { $0.int(0) } } ?? -1
    }

    @Test func aLongAnswerIsSavedAsItGrowsAndItsRowGoesWhenItEnds() throws {
        let database = try makeTestDatabase()
        let userID = try makeUser(database)
        let chat = ChatService(database: database, engine: StubEngine(tokenDelayMilliseconds: 5), progressInterval: .milliseconds(20))
        let sink = WatchingSink(database)
        let outcome = try chat.generate(try chat.prepare(userID: userID, TurnRequest(question: "take your time")), sink: sink)
        #expect(outcome.answer.status == .complete && outcome.answer.content == StubEngine.reply)
        #expect(sink.rowsSeen == 1, "one row per turn, written again at each save")
        #expect(sink.saved.count >= 3, "saved \(sink.saved.count) times")
        #expect(sink.saved.allSatisfy { !$0.isEmpty && sink.sent.hasPrefix($0) })
        #expect(zip(sink.saved, sink.saved.dropFirst()).allSatisfy { $0.count < $1.count }, "each save holds more")
        #expect(try runningRows(database) == 0)
    }

    @Test func aTurnShorterThanTheIntervalSavesNothingBeforeItsEnd() throws {
        let database = try makeTestDatabase()
        let userID = try makeUser(database)
        let chat = ChatService(database: database, engine: StubEngine())
        let sink = WatchingSink(database)
        _ = try chat.generate(try chat.prepare(userID: userID, TurnRequest(question: "quick")), sink: sink)
        #expect(sink.sent == StubEngine.reply)
        #expect(sink.rowsSeen == 0 && sink.saved.isEmpty)
    }

    @Test func whenItsProcessDiesTheSavedAnswerIsInterruptedAndTheConversationGoesOn() throws {
        let database = try makeTestDatabase()
        let userID = try makeUser(database)
        let chat = ChatService(database: database, engine: StubEngine())
        let turns = TurnStore(database: database)
        let conversations = ConversationStore(database: database)

        // This pid with another start time: a process that has died, whose pid was given again.
        let dead = ProcessIdentity(pid: getpid(), started: ProcessIdentity.current.started + 1)
        #expect(!dead.isAlive && ProcessIdentity.current.isAlive)
        func saveHalf(_ turn: PreparedTurn, owner: ProcessIdentity) throws -> TurnAnswer {
            let partial = TurnAnswer(conversationID: turn.conversationID, messageID: newID(), content: "Half an answer ",
                                     mode: .stub, model: "stub", status: .interrupted)
            try turns.saveProgress(partial, userID: userID, idempotencyKey: turn.request.idempotencyKey,
                                   usage: UsageEvent(userID: userID, conversationID: turn.conversationID, messageID: partial.messageID,
                                                     provider: "stub", model: "stub", inputTokens: 3, outputTokens: 2, estimated: true,
                                                     latencyMilliseconds: 1200, timeToFirstTokenMilliseconds: 40, status: .interrupted, cost: 0),
                                   owner: owner)
            return partial
        }
        let keyed = TurnRequest(question: "will it finish?", idempotencyKey: "k-dead")
        let orphan = try chat.prepare(userID: userID, keyed)
        let orphanAnswer = try saveHalf(orphan, owner: dead)
        let living = try chat.prepare(userID: userID, TurnRequest(question: "still streaming"))
        let livingAnswer = try saveHalf(living, owner: .current)
        #expect(throws: DomainError.self, "a replay while the first turn runs is a conflict") { try chat.prepare(userID: userID, keyed) }

        // The master's start: only the turn of the process that is gone.
        #expect(try turns.interruptTurnsOfDeadProcesses() == 1)
        let detail = try conversations.detail(userID: userID, id: orphan.conversationID)
        #expect(detail.messages.map(\.content) == ["will it finish?", "Half an answer"])
        #expect(detail.messages.last?.status == .interrupted && detail.messages.last?.id == orphanAnswer.messageID)
        #expect(detail.summary.messageCount == 2)
        #expect(try conversations.detail(userID: userID, id: living.conversationID).messages.count == 1)

        // The key replays the saved answer with its status.
        let replay = try chat.generate(try chat.prepare(userID: userID, keyed), sink: Discard())
        #expect(replay.answer.status == .interrupted && replay.answer.content == "Half an answer")
        #expect(replay.answer.messageID == orphanAnswer.messageID)
        let usage = try database.read { db in
            try db.all("SELECT status, output_tokens, estimated FROM usage_events WHERE message_id = ?", [orphanAnswer.messageID]) {
                "\($0.string(0)) \($0.int(1)) \($0.int(2))"
            }
        }
        #expect(usage == ["interrupted 2 1"])

        // The master, once it has reaped the living turn's worker.
        #expect(try turns.interruptTurns(of: .current) == 1)
        #expect(try conversations.detail(userID: userID, id: living.conversationID).messages.last?.id == livingAnswer.messageID)
        #expect(try runningRows(database) == 0)

        // The conversation goes on: the interrupted answer can be regenerated, and the next question asked.
        let regenerated = try chat.generate(try chat.prepare(userID: userID, TurnRequest(
            question: "", conversationID: orphan.conversationID, action: .regenerate)), sink: Discard())
        #expect(regenerated.answer.status == .complete)
        _ = try chat.generate(try chat.prepare(userID: userID, TurnRequest(question: "and then?", conversationID: orphan.conversationID)),
                              sink: Discard())
        let after = try conversations.detail(userID: userID, id: orphan.conversationID)
        #expect(after.messages.map(\.status) == [.complete, .complete, .complete, .complete])
        #expect(after.summary.messageCount == 4)
    }

    @Test func aProcessIsKnownByItsPidAndItsStartTime() throws {
        let current = ProcessIdentity.current
        #expect(current.pid == getpid() && current.started > 0)
        #expect(ProcessIdentity(pid: getpid()) == current)
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        let pid = child.processIdentifier
        child.waitUntilExit()
        #expect(ProcessIdentity(pid: pid) == nil)
    }
}
