import PriviaCore
import PriviaSupport

/// The chat state of one WebSocket: idle, or running exactly one turn.
///
/// Plain logic with no sockets: inputs are the client's text frames and the pool's response
/// events, outputs are actions for the handler to carry out. A turn is numbered so that events
/// of a turn that was stopped (or that already sent `done`) are dropped.
public struct ChatSocketSession {
    public typealias TurnID = Int

    public enum Action: Equatable {
        /// Send this server frame.
        case send(JSON)
        /// Start `POST /api/stream` with this JSON body and report its events with this id.
        case startTurn(TurnID, body: JSON)
        /// Close the pool connection of this turn now (the pool stops generating).
        case cancelTurn(TurnID)
    }

    public static let questionRequired: JSON = ["type": "error", "content": "Question is required"]
    public static let busy: JSON = ["type": "error", "content": "A response is already being generated"]

    public private(set) var runningTurn: TurnID?
    private var lastTurn: TurnID = 0
    private var reply = TurnReplyTranslator()

    public init() {}

    public mutating func receive(text: String) -> [Action] {
        let message = ClientMessage.parse(text)
        switch message {
        case .stop:
            guard let turn = runningTurn else { return [] }
            runningTurn = nil
            return [.cancelTurn(turn)]
        case .question(_, let body):
            if message.isBlankQuestion { return [.send(Self.questionRequired)] }
            guard runningTurn == nil else { return [.send(Self.busy)] }
            lastTurn += 1
            runningTurn = lastTurn
            reply = TurnReplyTranslator()
            return [.startTurn(lastTurn, body: body)]
        }
    }

    public mutating func receive(_ event: FastCGIResponseEvent, forTurn turn: TurnID) -> [Action] {
        guard turn == runningTurn else { return [] }  // stopped, or already done
        let frames = reply.receive(event)
        if reply.isFinished {
            runningTurn = nil
        }
        return frames.map(Action.send)
    }

    /// The socket is gone: the running turn, if any, must stop.
    public mutating func socketClosed() -> [Action] {
        guard let turn = runningTurn else { return [] }
        runningTurn = nil
        return [.cancelTurn(turn)]
    }
}
