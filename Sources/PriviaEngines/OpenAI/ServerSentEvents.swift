/// One event of a `text/event-stream`: its `event:` name, if any, and its `data:` lines joined by
/// line feeds.
struct ServerSentEvent: Equatable, Sendable {
    var name: String?
    var data: String
}

/// Incremental framing of a `text/event-stream` body, as the WHATWG HTML standard defines it
/// ("Interpreting an event stream"): bytes arrive split anywhere (inside a line, inside a UTF-8
/// sequence, between CR and LF), lines end with CRLF, LF or CR, a blank line dispatches the event,
/// lines starting with `:` are comments (OpenRouter sends `: OPENROUTER PROCESSING` keep-alives).
///
/// Lines are decoded only once complete, so a multi-byte character split across two reads is
/// never torn.
struct ServerSentEventParser: Sendable {
    private var line: [UInt8] = []
    private var lastByteWasCR = false
    private var sawFirstLine = false
    private var data = ""
    private var hasData = false
    private var name: String?

    /// Feeds the next bytes of the body; returns the events they completed, in order.
    mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [ServerSentEvent] where Bytes.Element == UInt8 {
        var events: [ServerSentEvent] = []
        for byte in bytes {
            if lastByteWasCR {
                lastByteWasCR = false
                if byte == 0x0A { continue }  // the LF of a CRLF
            }
            switch byte {
            case 0x0D:
                lastByteWasCR = true
                endLine(into: &events)
            case 0x0A:
                endLine(into: &events)
            default:
                line.append(byte)
            }
        }
        return events
    }

    /// The event the body ended in without its closing blank line, if its last line was complete
    /// or (leniently) if an unterminated last line holds a whole field.
    mutating func finish() -> ServerSentEvent? {
        var events: [ServerSentEvent] = []
        if !line.isEmpty { endLine(into: &events) }
        endLine(into: &events)  // the blank line the body did not send
        return events.last
    }

    private mutating func endLine(into events: inout [ServerSentEvent]) {
        var bytes = line[...]
        line.removeAll(keepingCapacity: true)
        if !sawFirstLine {
            sawFirstLine = true
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }  // a UTF-8 BOM
        }
        if bytes.isEmpty {
            if hasData { events.append(ServerSentEvent(name: name, data: data)) }
            data = ""
            hasData = false
            name = nil
            return
        }
        if bytes.first == UInt8(ascii: ":") { return }  // a comment
        var field = bytes
        var value = ArraySlice<UInt8>()
        if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
            field = bytes[..<colon]
            value = bytes[bytes.index(after: colon)...]
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        }
        switch String(decoding: field, as: UTF8.self) {
        case "data":
            if hasData { data += "\n" }
            data += String(decoding: value, as: UTF8.self)
            hasData = true
        case "event":
            name = String(decoding: value, as: UTF8.self)
        default:
            break  // `id`, `retry` and unknown fields mean nothing to a one-shot completion stream
        }
    }
}
