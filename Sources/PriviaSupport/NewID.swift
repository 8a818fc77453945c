import Foundation

/// A new id: a lower-case UUID version 7 (RFC 9562), in the same text form as the UUIDv4 ids
/// Privia's Python backend wrote. Its first 48 bits are the Unix time in milliseconds, so ids
/// sort in the order they were made: a new row's entry lands on the last page of each id index
/// instead of a random page, and a commit rewrites fewer pages. The time it reveals is the
/// row's `created_at`, which the API already returns.
public func newID() -> String {
    var bytes = [UInt8](repeating: 0, count: 16)
    let milliseconds = UInt64(Date().timeIntervalSince1970 * 1000)
    for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: milliseconds >> (40 - 8 * index)) }
    var generator = SystemRandomNumberGenerator()
    withUnsafeBytes(of: (generator.next() as UInt64, generator.next() as UInt16)) { random in
        for index in 0..<10 { bytes[6 + index] = random[index] }
    }
    bytes[6] = bytes[6] & 0x0f | 0x70  // version 7
    bytes[8] = bytes[8] & 0x3f | 0x80  // RFC 9562 variant
    var text = [UInt8]()
    text.reserveCapacity(36)
    for (index, char) in bytes.hex.utf8.enumerated() {
        if index == 8 || index == 12 || index == 16 || index == 20 { text.append(UInt8(ascii: "-")) }
        text.append(char)
    }
    return String(decoding: text, as: UTF8.self)
}
