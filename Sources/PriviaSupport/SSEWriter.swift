/// Server-sent events framing (the WHATWG `text/event-stream` format).
public enum SSE {
    /// One event: an optional `event:` name and a `data:` line for each line of `data`,
    /// so a token holding newlines survives the client's line splitting.
    public static func event(_ name: String? = nil, data: String) -> [UInt8] {
        var out = ""
        if let name { out += "event: \(name)\n" }
        var start = data.startIndex
        while let newline = data[start...].firstIndex(where: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            out += "data: " + data[start..<newline] + "\n"
            start = data.index(after: newline)
        }
        out += "data: " + data[start...] + "\n\n"
        return Array(out.utf8)
    }

    /// A comment line: ignored by clients, keeps proxies and the connection alive.
    public static let heartbeat: [UInt8] = Array(": ping\n\n".utf8)

    public static let headers: [(String, String)] = [
        ("Content-Type", "text/event-stream; charset=utf-8"),
        ("Cache-Control", "no-cache, no-transform"),
        ("X-Accel-Buffering", "no"),
    ]
}
