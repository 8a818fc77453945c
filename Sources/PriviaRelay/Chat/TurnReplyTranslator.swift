import NIOCore
import PriviaCore
import PriviaSupport

/// Turns the pool's answer to `POST /api/stream` into server frames.
///
/// A 200 answer is an SSE stream: unnamed events are tokens, `sources` a JSON array, `done`
/// and `error` JSON objects, comments heartbeats. Any other status carries a JSON error body
/// `{"detail": …, "code": …}` that becomes one error frame.
public struct TurnReplyTranslator {
    private enum Phase {
        case awaitingHead
        case streaming(SSEParser)
        case failed(status: Int, body: [UInt8])
        case finished
    }

    /// An error body larger than this is cut; only its `detail` matters.
    static let maxErrorBody = 64 * 1024

    private var phase = Phase.awaitingHead

    public init() {}

    /// True once a `done` or `error` frame went out: the turn is over for the client.
    public var isFinished: Bool {
        if case .finished = phase { return true }
        return false
    }

    public mutating func receive(_ event: FastCGIResponseEvent) -> [JSON] {
        switch (phase, event) {
        case (.finished, _):
            return []
        case (.awaitingHead, .head(let head)):
            phase = head.status == 200 ? .streaming(SSEParser()) : .failed(status: head.status, body: [])
            return []
        case (.streaming(var parser), .body(let bytes)):
            do {
                let events = try parser.feed(bytes.readableBytesView)
                phase = .streaming(parser)
                return frames(for: events)
            } catch {
                phase = .finished
                return [Self.error("The response from the chat service is malformed", code: "UNKNOWN")]
            }
        case (.failed(let status, var body), .body(let bytes)):
            body += bytes.readableBytesView.prefix(max(0, Self.maxErrorBody - body.count))
            phase = .failed(status: status, body: body)
            return []
        case (.failed(let status, let body), .end):
            phase = .finished
            return [Self.errorFrame(status: status, body: body)]
        case (_, .end):
            phase = .finished
            return [Self.error("The response ended unexpectedly", code: "UNKNOWN")]
        case (_, .failed):
            phase = .finished
            return [Self.error("The chat service is unavailable", code: "UNKNOWN")]
        case (_, .head), (.awaitingHead, .body):
            phase = .finished
            return [Self.error("The response from the chat service is malformed", code: "UNKNOWN")]
        }
    }

    private mutating func frames(for events: [SSEEvent]) -> [JSON] {
        var frames: [JSON] = []
        for event in events {
            switch TurnStreamEvent(rawValue: event.type) {
            case .token:
                frames.append(["type": "token", "content": .string(event.data), "mode": "stream"])
            case .sources:
                let sources = (try? JSONParser.parse(event.data))?.arrayValue ?? []
                frames.append(["type": "sources", "sources": .array(sources)])
            case .done:
                var members: [(String, JSON)] = [("type", "done")]
                if case .object(let fields)? = try? JSONParser.parse(event.data) {
                    members += fields.filter { $0.0 != "type" }
                }
                frames.append(.object(members))
                phase = .finished
                return frames
            case .error:
                let (message, code) = TurnStreamEvent.error(in: event.data)
                frames.append(Self.error(message, code: code))
                phase = .finished
                return frames
            case nil:
                continue  // an event this relay does not know: not for the client
            }
        }
        return frames
    }

    static func error(_ content: String, code: String? = nil) -> JSON {
        var members: [(String, JSON)] = [("type", "error"), ("content", .string(content))]
        if let code { members.append(("code", .string(code))) }
        return .object(members)
    }

    /// `{"detail": msg, "code": CODE}` from a non-200 answer.
    static func errorFrame(status: Int, body: [UInt8]) -> JSON {
        let json = try? JSONParser.parse(body)
        let detail = json?["detail"]?.stringValue ?? "Request failed with status \(status)"
        let code = json?["code"]?.stringValue ?? (status == 401 ? "AUTH" : status == 404 ? "NOT_FOUND" : "UNKNOWN")
        return error(detail, code: code)
    }
}
