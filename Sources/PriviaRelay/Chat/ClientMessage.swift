import PriviaCore
import PriviaSupport

/// A text frame from the browser, read the way the Python Privia backend's `/api/ws/chat` reads it.
public enum ClientMessage: Equatable, Sendable {
    /// A question and the JSON body for the pool's `POST /api/stream`.
    case question(String, body: JSON)
    case stop
    /// JSON whose text is not Unicode (a lone surrogate escape, as a browser's JSON.stringify
    /// writes one): refused with this reason, not taken as a bare-text question.
    case invalid(String)

    /// Fields besides `question` and `conversation_id` that reach the pool unchanged.
    static let passthroughFields: Set<String> = ["model", "temperature", "max_tokens", "idempotency_key", "action"]

    /// A JSON object is a request (`{"type":"stop"}` or a question); a JSON string is its
    /// contents; anything else is the question text itself.
    public static func parse(_ text: String) -> ClientMessage {
        let json: JSON
        do {
            json = try JSONParser.parse(text)
        } catch let failure as JSONParser.Failure where failure.isInvalidText {
            return .invalid("The message is not valid Unicode text: \(failure.reason)")
        } catch {
            return question(text, extra: [])
        }
        switch json {
        case .object(let members):
            if json["type"]?.stringValue == "stop" { return .stop }
            let question: String
            switch json["question"] {
            case nil, .null?: question = ""
            case .string(let s)?: question = s
            case let other?: question = other.text
            }
            var extra: [(String, JSON)] = []
            if let id = json["conversation_id"], !id.isNull { extra.append(("conversation_id", id)) }
            var seen: Set<String> = []
            for (key, value) in members where passthroughFields.contains(key) && seen.insert(key).inserted {
                extra.append((key, value))
            }
            return Self.question(question, extra: extra)
        case .string(let s):
            return question(s, extra: [])
        default:
            return question(text, extra: [])
        }
    }

    private static func question(_ text: String, extra: [(String, JSON)]) -> ClientMessage {
        .question(text, body: .object([("question", .string(text))] + extra))
    }

    /// Blank questions are refused before a turn starts, except for a regenerate, which
    /// answers the conversation's last question again and needs none.
    public var isBlankQuestion: Bool {
        guard case .question(let text, let body) = self, body["action"]?.stringValue != "regenerate" else { return false }
        return text.unicodeScalars.allSatisfy { $0.properties.isWhitespace }
    }
}
