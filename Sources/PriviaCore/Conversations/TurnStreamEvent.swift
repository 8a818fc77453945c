import PriviaSupport

/// The events of a chat turn's answer stream, as the pool's SSE route writes them and the relay
/// reads them back to make WebSocket frames. Both sides name events and fields through this
/// type, so the two cannot drift apart.
public enum TurnStreamEvent: String, Sendable, CaseIterable {
    /// A piece of the answer: an unnamed SSE event, whose type the SSE standard calls `message`.
    case token = "message"
    /// The answer's sources, a JSON array.
    case sources
    /// The turn ended with an answer: `AnswerRecord.doneJSON`.
    case done
    /// The turn failed: `errorJSON`.
    case error

    /// The SSE `event:` name; nil for tokens, which go unnamed.
    public var sseName: String? { self == .token ? nil : rawValue }

    /// One event in the SSE framing.
    public func sse(_ data: String) -> [UInt8] { SSE.event(sseName, data: data) }

    /// The data of an `error` event: the message, its stable code, and what the turn had made.
    public static func errorJSON(message: String, code: String, conversationID: String, messageID: String? = nil) -> JSON {
        var members: [(String, JSON)] = [("error", .string(message)), ("code", .string(code)),
                                         ("conversation_id", .string(conversationID))]
        if let messageID { members.append(("message_id", .string(messageID))) }
        return .object(members)
    }

    /// The message and code of an `error` event's data (or of a JSON error body, `detail`).
    public static func error(in data: String) -> (message: String, code: String) {
        let body = try? JSONParser.parse(data)
        return (body?["error"]?.stringValue ?? body?["detail"]?.stringValue ?? data, body?["code"]?.stringValue ?? "UNKNOWN")
    }
}
