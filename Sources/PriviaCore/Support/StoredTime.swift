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
        var bytes = Array(stored.utf8)
        if bytes.count > 10 && bytes[10] == UInt8(ascii: " ") { bytes[10] = UInt8(ascii: "T") }
        if bytes.count > 6 && bytes.suffix(6).elementsEqual("+00:00".utf8) { bytes.removeLast(6) }
        if bytes.last != UInt8(ascii: "Z") { bytes.append(UInt8(ascii: "Z")) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Lower-case UUIDv4 text, the id format Privia's tables use.
public func newID() -> String {
    var generator = SystemRandomNumberGenerator()
    var bytes = (0..<2).flatMap { _ in withUnsafeBytes(of: generator.next() as UInt64) { Array($0) } }
    bytes[6] = bytes[6] & 0x0f | 0x40  // version 4
    bytes[8] = bytes[8] & 0x3f | 0x80  // RFC 4122 variant
    let hex = bytes.hex
    let chars = Array(hex.utf8)
    var out = [UInt8]()
    out.reserveCapacity(36)
    for (index, char) in chars.enumerated() {
        if index == 8 || index == 12 || index == 16 || index == 20 { out.append(UInt8(ascii: "-")) }
        out.append(char)
    }
    return String(decoding: out, as: UTF8.self)
}
