import NIOCore

/// The head of a CGI response (RFC 3875 section 6): the `Status` header and the others.
public struct CGIResponseHead: Sendable, Equatable {
    public var status: Int
    /// Header names as sent; look them up with `header(_:)`.
    public var headers: [(String, String)]

    public init(status: Int, headers: [(String, String)]) {
        self.status = status
        self.headers = headers
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    public static func == (lhs: CGIResponseHead, rhs: CGIResponseHead) -> Bool {
        lhs.status == rhs.status && lhs.headers.elementsEqual(rhs.headers, by: { $0 == $1 })
    }
}

/// Splits the STDOUT stream of a FastCGI responder into the CGI head and the body bytes.
///
/// Incremental: feed it each STDOUT record as it arrives. The head ends at the first blank
/// line (CRLF CRLF, or LF LF from a lax application).
public struct CGIResponseParser {
    public enum Output: Equatable {
        case head(CGIResponseHead)
        case body(ByteBuffer)
    }

    /// A larger head is refused; the pool's heads are a few hundred bytes.
    public static let maxHeadLength = 32 * 1024

    private var pendingHead: ByteBuffer? = ByteBuffer()

    public init() {}

    public var sawHead: Bool { pendingHead == nil }

    public mutating func feed(_ bytes: ByteBuffer) throws -> [Output] {
        guard var head = pendingHead else {
            return bytes.readableBytes > 0 ? [.body(bytes)] : []
        }
        var bytes = bytes
        head.writeBuffer(&bytes)
        let view = head.readableBytesView
        guard let (headEnd, bodyStart) = Self.endOfHead(in: view) else {
            if head.readableBytes > Self.maxHeadLength { throw FastCGIError.responseHeadTooLarge }
            pendingHead = head
            return []
        }
        let text = String(decoding: view[view.startIndex..<headEnd], as: UTF8.self)
        pendingHead = nil
        var outputs: [Output] = [.head(try Self.parseHead(text))]
        let body = head.getSlice(at: bodyStart, length: head.writerIndex - bodyStart)!
        if body.readableBytes > 0 { outputs.append(.body(body)) }
        return outputs
    }

    /// The index where the head's text ends and where the body begins.
    private static func endOfHead(in view: ByteBufferView) -> (Int, Int)? {
        let lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
        var index = view.startIndex
        while let newline = view[index...].firstIndex(of: lf) {
            var next = newline + 1
            if next < view.endIndex, view[next] == cr { next += 1 }
            if next < view.endIndex, view[next] == lf {
                let end = newline > view.startIndex && view[newline - 1] == cr ? newline - 1 : newline
                return (end, next + 1)
            }
            index = newline + 1
        }
        return nil
    }

    static func parseHead(_ text: String) throws -> CGIResponseHead {
        var status = 200
        var headers: [(String, String)] = []
        // `isNewline`, not "\n": a Swift Character holds CR LF as one grapheme.
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else {
                throw FastCGIError.malformedResponseHead("header line without a colon")
            }
            let name = String(line[..<colon]).trimmingSpaces()
            let value = String(line[line.index(after: colon)...]).trimmingSpaces()
            if name.lowercased() == "status" {
                guard let code = Int(value.prefix(while: { $0.isNumber })), (100...599).contains(code) else {
                    throw FastCGIError.malformedResponseHead("bad Status '\(value)'")
                }
                status = code
            } else {
                headers.append((name, value))
            }
        }
        return CGIResponseHead(status: status, headers: headers)
    }
}

extension String {
    func trimmingSpaces() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\t" }) else { return "" }
        let last = scalars.lastIndex(where: { $0 != " " && $0 != "\t" })!
        return String(scalars[first...last])
    }
}
