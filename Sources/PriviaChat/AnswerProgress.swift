import Logging
import PriviaCore
import PriviaEngines

/// Saves a turn's answer as it streams, at most once per `interval` (`TurnStore.saveProgress`),
/// so a worker process that dies mid-answer loses at most that much of it: the pool's master
/// makes the saved text an `interrupted` answer. A turn that ends within its first interval
/// saves nothing and costs no write.
final class AnswerProgress {
    private let interval: Duration
    private var nextSave: ContinuousClock.Instant
    private let save: (StreamedAnswer) throws -> Void
    /// A save succeeded: the turn has a row to remove when it ends.
    private(set) var saved = false
    private var failed = false

    init(startedAt started: ContinuousClock.Instant, interval: Duration, save: @escaping (StreamedAnswer) throws -> Void) {
        self.interval = interval
        self.nextSave = started + interval
        self.save = save
    }

    /// After each piece the sink took. A failed save is logged once; the turn goes on, and the
    /// next save is tried an interval later.
    func delivered(_ answer: StreamedAnswer) {
        let now = ContinuousClock.now
        guard now >= nextSave else { return }
        nextSave = now + interval
        do {
            try save(answer)
            saved = true
        } catch {
            if !failed { processLog.error("cannot save an answer in progress", metadata: ["error": .string("\(error)")]) }
            failed = true
        }
    }
}
