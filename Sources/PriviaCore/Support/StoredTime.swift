import Foundation

/// Time as Privia's database stores it (naive UTC, `YYYY-MM-DD HH:MM:SS.ffffff`, the form its
/// Python backend wrote), and as the API sends it (RFC 3339 in UTC).
public enum StoredTime {
    /// Now, in the stored form. Sorts the same as the instant it names.
    public static func now() -> String {
        var text = Timestamp.now()  // 2026-11-21T20:13:55.123456Z
        text.removeLast()
        return text.replacingOccurrences(of: "T", with: " ")
    }

    /// The stored form as RFC 3339 UTC. Values without a zone are UTC, as Privia wrote them.
    public static func rfc3339(_ stored: String) -> String {
        var text = stored.replacingOccurrences(of: " ", with: "T")
        if text.hasSuffix("+00:00") { text.removeLast(6) }
        if !text.hasSuffix("Z") { text += "Z" }
        return text
    }
}

/// Lower-case UUIDv4 text, the id format Privia's tables use.
public func newID() -> String { UUID().uuidString.lowercased() }
