import Foundation

/// Time as Privia's database stores it (naive UTC, `YYYY-MM-DD HH:MM:SS.ffffff`, the form its
/// Python backend wrote), and as the API sends it (RFC 3339 in UTC).
public enum StoredTime {
    /// Now, in the stored form. Sorts the same as the instant it names.
    public static func now() -> String {
        Timestamp.format(clock: Timestamp.currentTime(), separator: UInt8(ascii: " "), zone: false)
    }

    /// The stored form as RFC 3339 UTC. Values without a zone are UTC, as Privia wrote them.
    public static func rfc3339(_ stored: String) -> String {
        var bytes: [UInt8] = []
        var stored = stored
        stored.withUTF8 { writeRFC3339($0, to: &bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `rfc3339` of the stored form's UTF-8 bytes to `out` without making a string.
    public static func writeRFC3339(_ stored: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: stored)
        let count = out.count - start
        if count > 10 && out[start + 10] == UInt8(ascii: " ") { out[start + 10] = UInt8(ascii: "T") }
        if count > 6 && out[(out.count - 6)...].elementsEqual("+00:00".utf8) { out.removeLast(6) }
        if out.count == start || out[out.count - 1] != UInt8(ascii: "Z") { out.append(UInt8(ascii: "Z")) }
    }
}
