import Foundation

/// RFC 3339 timestamps in UTC with microseconds, the form Privia stores and sends.
///
/// Formatted digit by digit: this runs several times per request (the request log, every
/// stored row), where Foundation's `String(format:)` cost more than the rest of the request.
public enum Timestamp {
    public static func now() -> String { format(clock: currentTime(), separator: UInt8(ascii: "T"), zone: true) }

    public static func format(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        return format(clock: (Int(seconds), Int((date.timeIntervalSince1970 - seconds) * 1_000_000)),
                      separator: UInt8(ascii: "T"), zone: true)
    }

    /// Seconds and microseconds since the epoch, from the real-time clock.
    static func currentTime() -> (seconds: Int, micros: Int) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return (Int(now.tv_sec), Int(now.tv_nsec) / 1000)
    }

    /// `YYYY-MM-DD<separator>HH:MM:SS.ffffff`, then `Z` when `zone`.
    static func format(clock: (seconds: Int, micros: Int), separator: UInt8, zone: Bool) -> String {
        var seconds = time_t(clock.seconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(unsafeUninitializedCapacity: 27) { buffer in
            func put(_ value: Int, at offset: Int, width: Int) {
                var value = value
                for index in stride(from: offset + width - 1, through: offset, by: -1) {
                    buffer[index] = UInt8(truncatingIfNeeded: 48 + value % 10)
                    value /= 10
                }
            }
            put(Int(parts.tm_year) + 1900, at: 0, width: 4)
            buffer[4] = UInt8(ascii: "-")
            put(Int(parts.tm_mon) + 1, at: 5, width: 2)
            buffer[7] = UInt8(ascii: "-")
            put(Int(parts.tm_mday), at: 8, width: 2)
            buffer[10] = separator
            put(Int(parts.tm_hour), at: 11, width: 2)
            buffer[13] = UInt8(ascii: ":")
            put(Int(parts.tm_min), at: 14, width: 2)
            buffer[16] = UInt8(ascii: ":")
            put(Int(parts.tm_sec), at: 17, width: 2)
            buffer[19] = UInt8(ascii: ".")
            put(clock.micros, at: 20, width: 6)
            guard zone else { return 26 }
            buffer[26] = UInt8(ascii: "Z")
            return 27
        }
    }
}
