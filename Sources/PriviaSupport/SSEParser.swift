/// One server-sent event: its type (`message` when the stream named none) and its data.
public struct SSEEvent: Sendable, Equatable {
    public var type: String
    public var data: String

    public init(type: String = "message", data: String) {
        self.type = type
        self.data = data
    }
}

/// An incremental `text/event-stream` parser following the WHATWG HTML specification,
/// section "Interpreting an event stream". It reads both a provider's stream (the internet)
/// and the pool's (the relay), so every buffer it grows is bounded.
///
/// Lines end with CRLF, LF or CR, and a chunk may end anywhere (inside a line, between the
/// CR and LF of one line break, inside a UTF-8 sequence): lines are decoded only once complete.
/// `data:` lines of one event are joined with "\n"; a blank line dispatches; lines starting with
/// ":" are comments (heartbeats, OpenRouter's keep-alives); one space after the colon is dropped;
/// `id` and `retry` are ignored because neither reader ever reconnects.
public struct SSEParser: Sendable {
    public enum Failure: Error, Equatable { case lineTooLong, eventTooLarge }

    /// Upper bounds that keep a broken or hostile peer from growing a buffer without end.
    public static let maxLineLength = 1 << 20
    public static let maxEventLength = 4 << 20

    private var line: [UInt8] = []
    private var afterCR = false
    private var atStart = true
    private var eventType = ""
    private var data: [UInt8] = []
    private var hasData = false

    public init() {}

    /// Feeds the next chunk; returns the events it completed, in order.
    public mutating func feed<Bytes: Sequence<UInt8>>(_ bytes: Bytes) throws -> [SSEEvent] {
        var events: [SSEEvent] = []
        for byte in bytes {
            if afterCR {
                afterCR = false
                if byte == UInt8(ascii: "\n") { continue }
            }
            switch byte {
            case UInt8(ascii: "\r"):
                afterCR = true
                if let event = try endLine() { events.append(event) }
            case UInt8(ascii: "\n"):
                if let event = try endLine() { events.append(event) }
            default:
                guard line.count < Self.maxLineLength else { throw Failure.lineTooLong }
                line.append(byte)
            }
        }
        return events
    }

    /// The event a stream ended in without its closing blank line: its last line counts even
    /// when unterminated.
    public mutating func finish() throws -> SSEEvent? {
        if !line.isEmpty, let event = try endLine() { return event }
        return try endLine()  // the blank line the stream did not send
    }

    private mutating func endLine() throws -> SSEEvent? {
        defer { line.removeAll(keepingCapacity: line.capacity <= 4096) }
        if atStart {
            atStart = false
            if line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }  // a UTF-8 BOM
        }
        if line.isEmpty { return dispatch() }
        if line[0] == UInt8(ascii: ":") { return nil }

        let field: ArraySlice<UInt8>
        var value: ArraySlice<UInt8>
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            field = line[..<colon]
            value = line[(colon + 1)...]
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        } else {
            field = line[...]
            value = []
        }
        if field.elementsEqual("data".utf8) {
            guard data.count + value.count < Self.maxEventLength else { throw Failure.eventTooLarge }
            if hasData { data.append(UInt8(ascii: "\n")) }
            data += value
            hasData = true
        } else if field.elementsEqual("event".utf8) {
            eventType = String(decoding: value, as: UTF8.self)
        }
        return nil
    }

    private mutating func dispatch() -> SSEEvent? {
        defer {
            eventType = ""
            data.removeAll(keepingCapacity: data.capacity <= 4096)
            hasData = false
        }
        guard hasData else { return nil }
        return SSEEvent(type: eventType.isEmpty ? "message" : eventType, data: String(decoding: data, as: UTF8.self))
    }
}
