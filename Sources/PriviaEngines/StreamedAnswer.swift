/// A generation's answer as it streams: every piece of text passes through it to the transport's
/// sink, and it is the one place that keeps what the sink took, when the first piece came and
/// whether the turn was stopped. Engines read it (a failure after the first piece is not
/// retried elsewhere) and so does whoever runs them (to persist and meter the answer).
///
/// Engines call `token` for every piece, `keepGoing` between pieces of work, `pause(for:)`
/// when they have nothing to send, and `willWait()` before waiting on something slow (a
/// provider, a delay). Once any call has returned false the turn is stopped, every call returns
/// false, and the engine returns with what it has.
public final class StreamedAnswer {
    /// What the sink took, in order; a piece it refused is not part of the answer.
    public private(set) var text = ""
    /// When the first piece was offered to the sink.
    public private(set) var firstTokenAt: ContinuousClock.Instant?
    /// The sink said stop (the user pressed stop, or the client left).
    public private(set) var stopped = false

    private let sink: GenerationSink
    private let waiting: () -> Void
    private let delivered: (StreamedAnswer) -> Void

    /// `willWait` runs whenever the generation is about to wait on something slow, so the
    /// carrier can treat the turn as long work from then on; `delivered` after each piece the
    /// sink took, with the answer so far.
    public init(_ sink: GenerationSink, willWait: @escaping () -> Void = {},
                delivered: @escaping (StreamedAnswer) -> Void = { _ in }) {
        self.sink = sink
        self.waiting = willWait
        self.delivered = delivered
    }

    /// True once a piece of text was offered to the sink, taken or not.
    public var hasStarted: Bool { firstTokenAt != nil }

    public func token(_ piece: String) -> Bool {
        guard !stopped else { return false }
        if firstTokenAt == nil { firstTokenAt = .now }
        guard sink.token(piece) else {
            stopped = true
            return false
        }
        text += piece
        delivered(self)
        return true
    }

    public func keepGoing() -> Bool {
        if !stopped && !sink.keepGoing() { stopped = true }
        return !stopped
    }

    public func pause(for duration: Duration) -> Bool {
        if !stopped && !sink.pause(for: duration) { stopped = true }
        return !stopped
    }

    public func willWait() {
        waiting()
    }
}
