import PriviaCore
import PriviaSupport

/// The chat state of one WebSocket: idle, or running exactly one turn.
///
/// Plain logic with no sockets: inputs are the client's text frames and the pool's response
/// events, outputs are actions for the handler to carry out. A turn is numbered so that events
/// of a turn that already ended for the client (or was cancelled) are dropped.
///
/// Every turn ends for the client with one `done` or `error` frame, stopped turns included:
/// a stop asks the pool to stop and the turn runs on until the pool's `done` (status
/// `stopped`) comes back, or until the handler's bound passes (`stopTimedOut`).
public struct ChatSocketSession {
    public typealias TurnID = Int

    public enum Action: Equatable {
        /// Send this server frame.
        case send(JSON)
        /// Start `POST /api/stream` with this JSON body and report its events with this id.
        case startTurn(TurnID, body: JSON)
        /// Ask the pool to stop this turn, keep reading its answer, and call `stopTimedOut`
        /// if the turn has not ended within the bound.
        case stopTurn(TurnID)
        /// Close the pool connection of this turn now (the pool stops generating).
        case cancelTurn(TurnID)
    }

    public static let questionRequired: JSON = ["type": "error", "content": "Question is required"]
    public static let busy: JSON = ["type": "error", "content": "A response is already being generated"]
    /// What ends a stopped turn whose pool never answered the stop: the pool's own `done` would
    /// have said the same, without naming the message.
    public static let stoppedWithoutAnswer: JSON = ["type": "done", "status": "stopped", "stopped": true]

    public private(set) var runningTurn: TurnID?
    /// True from a stop until the running turn's last frame.
    public private(set) var isStopping = false
    private var lastTurn: TurnID = 0
    private var reply = TurnReplyTranslator()

    public init() {}

    public mutating func receive(text: String) -> [Action] {
        let message = ClientMessage.parse(text)
        switch message {
        case .stop:
            guard let turn = runningTurn, !isStopping else { return [] }
            isStopping = true
            return [.stopTurn(turn)]
        case .invalid(let reason):
            return [.send(TurnReplyTranslator.error(reason, code: "VALIDATION"))]
        case .question(_, let body):
            if message.isBlankQuestion { return [.send(Self.questionRequired)] }
            // A question during a stop is refused like one during the answer: the stop ends
            // with its `done` (within the bound), and the client asks again after it.
            guard runningTurn == nil else { return [.send(Self.busy)] }
            lastTurn += 1
            runningTurn = lastTurn
            reply = TurnReplyTranslator()
            return [.startTurn(lastTurn, body: body)]
        }
    }

    public mutating func receive(_ event: FastCGIResponseEvent, forTurn turn: TurnID) -> [Action] {
        guard turn == runningTurn else { return [] }  // already ended for the client, or cancelled
        let frames = reply.receive(event)
        if reply.isFinished {
            runningTurn = nil
            isStopping = false
        }
        return frames.map(Action.send)
    }

    /// The pool did not end a stopped turn within the bound: end it for the client and close
    /// the pool connection (the pool then stops as for a client that left).
    public mutating func stopTimedOut(_ turn: TurnID) -> [Action] {
        guard turn == runningTurn, isStopping else { return [] }
        runningTurn = nil
        isStopping = false
        return [.send(Self.stoppedWithoutAnswer), .cancelTurn(turn)]
    }

    /// The socket is gone: the running turn, if any, must stop.
    public mutating func socketClosed() -> [Action] {
        guard let turn = runningTurn else { return [] }
        runningTurn = nil
        isStopping = false
        return [.cancelTurn(turn)]
    }
}
