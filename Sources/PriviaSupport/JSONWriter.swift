/// Writes compact JSON text straight into a byte buffer.
///
/// The list and detail responses are the API's most frequent answers; building a `JSON` tree
/// for them first (an enum per value, an array of key–value pairs per object) cost more than
/// the SQLite queries behind them. Types on those paths write themselves with this instead.
///
/// The generic entry points are `@inlinable` so that a caller in another module gets them
/// specialized for its concrete types: unspecialized, a list of 20 conversations went through
/// witness tables and boxed iterators element by element.
public struct JSONWriter {
    public private(set) var bytes: [UInt8]
    /// No member or element has been written yet at the current level: no comma before the next.
    private var atStart = true

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func object(_ members: (inout JSONWriter) throws -> Void) rethrows {
        try nested(open: UInt8(ascii: "{"), close: UInt8(ascii: "}"), members)
    }

    public mutating func array(_ elements: (inout JSONWriter) throws -> Void) rethrows {
        try nested(open: UInt8(ascii: "["), close: UInt8(ascii: "]"), elements)
    }

    /// An array holding each of `values`.
    @inlinable
    public mutating func array<Values: Sequence>(_ values: Values) where Values.Element: JSONWritable {
        // Room for typical elements up front (a conversation summary is about 170 bytes), rather
        // than doubling the buffer four or five times on the way to a page of them.
        reserve(values.underestimatedCount * 192)
        array { out in
            for value in values { out.element(value) }
        }
    }

    private mutating func nested(open: UInt8, close: UInt8, _ body: (inout JSONWriter) throws -> Void) rethrows {
        bytes.append(open)
        let outer = atStart
        atStart = true
        try body(&self)
        atStart = outer
        bytes.append(close)
    }

    @usableFromInline
    mutating func reserve(_ more: Int) { bytes.reserveCapacity(bytes.count + more) }

    @usableFromInline
    mutating func separate() {
        if !atStart { bytes.append(UInt8(ascii: ",")) }
        atStart = false
    }

    /// `"key":` inside an object, ready for its value. Keys are literals that need no escaping.
    public mutating func key(_ key: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    /// A key known only at run time (a `JSON` object's), escaped like any string.
    public mutating func key(dynamic key: String) {
        separate()
        string(key)
        bytes.append(UInt8(ascii: ":"))
    }

    /// The next element of an array.
    @inlinable
    public mutating func element(_ value: some JSONWritable) {
        separate()
        value.writeJSON(to: &self)
    }

    public mutating func member(_ key: StaticString, _ value: String) {
        self.key(key)
        string(value)
    }

    public mutating func member(_ key: StaticString, _ value: Int) {
        self.key(key)
        int(value)
    }

    @inlinable
    public mutating func member(_ key: StaticString, _ value: some JSONWritable) {
        self.key(key)
        value.writeJSON(to: &self)
    }

    /// A stored time (see `StoredTime`) as RFC 3339 UTC text.
    public mutating func member(_ key: StaticString, storedTime: String) {
        self.key(key)
        var storedTime = storedTime
        storedTime.withUTF8 { quotedTime($0) }
    }

    /// A stored time given as UTF-8 bytes that nothing has checked, as `string(utf8:)` takes them.
    public mutating func storedTime(utf8: UnsafeBufferPointer<UInt8>) {
        if Self.isASCII(utf8) { return quotedTime(utf8) }
        var text = String(decoding: utf8, as: UTF8.self)
        text.withUTF8 { quotedTime($0) }
    }

    private mutating func quotedTime(_ utf8: UnsafeBufferPointer<UInt8>) {
        bytes.append(UInt8(ascii: "\""))
        StoredTime.writeRFC3339(utf8, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    // MARK: Values

    public mutating func null() { bytes += "null".utf8 }
    public mutating func bool(_ value: Bool) { bytes += (value ? "true" : "false").utf8 }
    /// Decimal digits written in place: `String(value)` allocated a string per number.
    public mutating func int(_ value: Int) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buffer in
            var start = buffer.count
            repeat {
                start -= 1
                buffer[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            bytes.append(contentsOf: buffer[start...])
        }
    }
    public mutating func double(_ value: Double) { bytes += (value.isFinite ? String(value) : "null").utf8 }

    /// JSON text someone already encoded (`JSON.encoded`), copied as it is.
    mutating func raw(_ text: [UInt8]) { bytes += text }

    public mutating func string(_ string: String) {
        var string = string
        string.withUTF8 { quoted($0) }
    }

    /// A string given as UTF-8 bytes that nothing has checked (a database column's): ASCII is
    /// written as it is, without making a `String`; anything else goes through
    /// `String(decoding:)`, which repairs invalid UTF-8 as every other read does.
    public mutating func string(utf8: UnsafeBufferPointer<UInt8>) {
        if Self.isASCII(utf8) { quoted(utf8) } else { string(String(decoding: utf8, as: UTF8.self)) }
    }

    private static func isASCII(_ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        !utf8.contains { $0 >= 0x80 }
    }

    /// Valid UTF-8 between quotes. Most strings need no escaping: they are copied whole.
    private mutating func quoted(_ utf8: UnsafeBufferPointer<UInt8>) {
        bytes.append(UInt8(ascii: "\""))
        if utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5c }) {
            for byte in utf8 { escape(byte) }
        } else {
            bytes.append(contentsOf: utf8)
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private mutating func escape(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\""): bytes += #"\""#.utf8
        case UInt8(ascii: "\\"): bytes += #"\\"#.utf8
        case UInt8(ascii: "\n"): bytes += #"\n"#.utf8
        case UInt8(ascii: "\r"): bytes += #"\r"#.utf8
        case UInt8(ascii: "\t"): bytes += #"\t"#.utf8
        case 0..<0x20:
            bytes += #"\u00"#.utf8
            bytes.append(Self.hexDigits[Int(byte >> 4)])
            bytes.append(Self.hexDigits[Int(byte & 0xf)])
        default: bytes.append(byte)
        }
    }
}

/// A value that writes its own JSON text.
public protocol JSONWritable {
    func writeJSON(to out: inout JSONWriter)
}

extension JSONWritable {
    /// Compact UTF-8 JSON text.
    @inlinable
    public func encoded() -> [UInt8] {
        var out = JSONWriter()
        writeJSON(to: &out)
        return out.bytes
    }

    /// The value as a `JSON` tree member, encoded once.
    public var json: JSON { .raw(encoded()) }
}

extension Array: JSONWritable where Element: JSONWritable {
    @inlinable
    public func writeJSON(to out: inout JSONWriter) { out.array(self) }
}

extension String: JSONWritable {
    public func writeJSON(to out: inout JSONWriter) { out.string(self) }
}
