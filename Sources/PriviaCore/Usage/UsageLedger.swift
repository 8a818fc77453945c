import Foundation
import PriviaSupport

/// One generation's cost, as recorded in `usage_events`.
public struct UsageEvent: Sendable {
    public var userID: String
    public var conversationID: String?
    public var messageID: String?
    public var provider: String
    public var model: String
    public var inputTokens: Int
    public var outputTokens: Int
    public var estimated: Bool
    public var latencyMilliseconds: Int
    public var timeToFirstTokenMilliseconds: Int?
    public var status: MessageStatus
    public var cost: Double

    public init(userID: String, conversationID: String?, messageID: String?, provider: String, model: String,
                inputTokens: Int, outputTokens: Int, estimated: Bool, latencyMilliseconds: Int,
                timeToFirstTokenMilliseconds: Int?, status: MessageStatus, cost: Double) {
        self.userID = userID
        self.conversationID = conversationID
        self.messageID = messageID
        self.provider = provider
        self.model = model
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.estimated = estimated
        self.latencyMilliseconds = latencyMilliseconds
        self.timeToFirstTokenMilliseconds = timeToFirstTokenMilliseconds
        self.status = status
        self.cost = cost
    }
}

/// Per-user daily limits; zero means no limit.
public struct UsageBudget: Sendable {
    public var dailyTokens: Int
    public var dailyCost: Double
    public static let unlimited = UsageBudget(dailyTokens: 0, dailyCost: 0)
    public init(dailyTokens: Int, dailyCost: Double) {
        self.dailyTokens = dailyTokens
        self.dailyCost = dailyCost
    }
}

/// Usage metering over `usage_events`: recording, today's totals, budgets, reports.
public struct UsageLedger: Sendable {
    private let database: Database
    public let budget: UsageBudget

    public init(database: Database, budget: UsageBudget = .unlimited) {
        self.database = database
        self.budget = budget
    }

    public static func record(_ event: UsageEvent, in db: SQLiteConnection) throws {
        try db.run("""
            INSERT INTO usage_events (user_id, conversation_id, message_id, provider, model, input_tokens, output_tokens,
              estimated, latency_ms, time_to_first_token_ms, status, cost, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [event.userID, event.conversationID, event.messageID, event.provider, event.model, event.inputTokens,
                  event.outputTokens, event.estimated, event.latencyMilliseconds, event.timeToFirstTokenMilliseconds,
                  event.status.rawValue, event.cost, StoredTime.now()])
    }

    /// The start of the current UTC day in stored form, and how long until the next one.
    static func today(_ now: Date = Date()) -> (start: String, secondsLeft: Int) {
        let seconds = Int(now.timeIntervalSince1970)
        let dayStart = seconds - seconds % 86_400
        let start = Timestamp.format(now).prefix(10) + " 00:00:00.000000"
        return (String(start), dayStart + 86_400 - seconds)
    }

    /// Refuses a turn when the user's tokens or cost today reached the budget, saying when it resets.
    public func checkBudget(userID: String, now: Date = Date()) throws {
        guard budget.dailyTokens > 0 || budget.dailyCost > 0 else { return }
        let (start, secondsLeft) = Self.today(now)
        let (tokens, cost) = try database.read { db in
            try db.first("SELECT coalesce(sum(input_tokens + output_tokens), 0), coalesce(sum(cost), 0) FROM usage_events WHERE user_id = ? AND created_at >= ?",
                         [userID, start]) { ($0.int(0), $0.double(1)) } ?? (0, 0)
        }
        let resets = "it resets at 00:00 UTC, in \(secondsLeft / 3600)h \(secondsLeft % 3600 / 60)m"
        if budget.dailyTokens > 0 && tokens >= budget.dailyTokens {
            throw DomainError.rateLimited("Daily token budget of \(budget.dailyTokens) reached; \(resets)")
        }
        if budget.dailyCost > 0 && cost >= budget.dailyCost {
            throw DomainError.rateLimited("Daily cost budget of $\(budget.dailyCost) reached; \(resets)")
        }
    }

    /// A user's totals by UTC day and model, newest day first, for the last `days` days.
    public func report(userID: String, days: Int) throws -> JSON {
        let cutoff = Date().addingTimeInterval(-Double(days - 1) * 86_400)
        let cutoffDay = String(Timestamp.format(cutoff).prefix(10)) + " 00:00:00.000000"
        let rows = try database.read { db in
            try db.all("""
                SELECT substr(created_at, 1, 10) AS day, model, provider, count(*), sum(input_tokens), sum(output_tokens),
                       sum(cost), max(estimated)
                FROM usage_events WHERE user_id = ? AND created_at >= ?
                GROUP BY day, model, provider ORDER BY day DESC, model
                """, [userID, cutoffDay]) { row -> JSON in
                ["day": .string(row.string(0)), "model": .string(row.string(1)), "provider": .string(row.string(2)),
                 "generations": .int(row.int(3)), "input_tokens": .int(row.int(4)), "output_tokens": .int(row.int(5)),
                 "cost": .double(row.double(6)), "estimated": .bool(row.int(7) == 1)]
            }
        }
        let totals = rows.reduce(into: (0, 0, 0.0)) { sum, row in
            sum.0 += row["input_tokens"]?.intValue ?? 0
            sum.1 += row["output_tokens"]?.intValue ?? 0
            sum.2 += row["cost"]?.doubleValue ?? 0
        }
        var limits: [(String, JSON)] = []
        if budget.dailyTokens > 0 { limits.append(("daily_tokens", .int(budget.dailyTokens))) }
        if budget.dailyCost > 0 { limits.append(("daily_cost", .double(budget.dailyCost))) }
        return ["days": .int(days), "by_day_and_model": .array(rows),
                "totals": ["input_tokens": .int(totals.0), "output_tokens": .int(totals.1), "cost": .double(totals.2)],
                "budget": .object(limits)]
    }
}
