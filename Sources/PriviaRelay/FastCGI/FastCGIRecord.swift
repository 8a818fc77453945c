import NIOCore

/// One FastCGI record (FastCGI 1.0 specification, section 3.3): an 8-byte header, the content,
/// and padding that keeps the next record 8-byte aligned.
public struct FastCGIRecord: Sendable, Equatable {
    /// Record types this relay writes or reads (specification section 8).
    public struct Kind: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        public static let beginRequest = Kind(rawValue: 1)
        public static let abortRequest = Kind(rawValue: 2)
        public static let endRequest = Kind(rawValue: 3)
        public static let params = Kind(rawValue: 4)
        public static let stdin = Kind(rawValue: 5)
        public static let stdout = Kind(rawValue: 6)
        public static let stderr = Kind(rawValue: 7)
        public static let data = Kind(rawValue: 8)
        public static let unknownType = Kind(rawValue: 11)

        public var description: String { "FastCGI record type \(rawValue)" }
    }

    public static let version: UInt8 = 1
    public static let headerLength = 8
    /// The content length field is 16 bits wide.
    public static let maxContentLength = 65_535

    public var kind: Kind
    public var requestID: UInt16
    public var content: ByteBuffer

    public init(kind: Kind, requestID: UInt16 = 1, content: ByteBuffer = ByteBuffer()) {
        precondition(content.readableBytes <= Self.maxContentLength, "FastCGI record content over 65535 bytes")
        self.kind = kind
        self.requestID = requestID
        self.content = content
    }

    /// Appends the record to `out`, padded to a multiple of 8 bytes.
    public func write(to out: inout ByteBuffer) {
        let length = content.readableBytes
        let padding = (8 - length % 8) % 8
        out.writeInteger(Self.version)
        out.writeInteger(kind.rawValue)
        out.writeInteger(requestID)
        out.writeInteger(UInt16(length))
        out.writeInteger(UInt8(padding))
        out.writeInteger(UInt8(0))
        var body = content
        out.writeBuffer(&body)
        out.writeRepeatingByte(0, count: padding)
    }

    /// Reads one whole record from the front of `buffer`, or returns nil (consuming nothing)
    /// when the buffer does not hold a whole record yet.
    public static func read(from buffer: inout ByteBuffer) throws -> FastCGIRecord? {
        guard buffer.readableBytes >= headerLength else { return nil }
        let start = buffer.readerIndex
        let version = buffer.getInteger(at: start, as: UInt8.self)!
        guard version == Self.version else { throw FastCGIError.unsupportedVersion(version) }
        let kind = Kind(rawValue: buffer.getInteger(at: start + 1, as: UInt8.self)!)
        let requestID = buffer.getInteger(at: start + 2, as: UInt16.self)!
        let length = Int(buffer.getInteger(at: start + 4, as: UInt16.self)!)
        let padding = Int(buffer.getInteger(at: start + 6, as: UInt8.self)!)
        guard buffer.readableBytes >= headerLength + length + padding else { return nil }
        buffer.moveReaderIndex(forwardBy: headerLength)
        let content = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: padding)
        return FastCGIRecord(kind: kind, requestID: requestID, content: content)
    }
}

/// A malformed FastCGI stream.
public enum FastCGIError: Error, Equatable, CustomStringConvertible {
    case unsupportedVersion(UInt8)
    case malformedParams
    case malformedEndRequest
    case malformedResponseHead(String)
    case responseHeadTooLarge

    public var description: String {
        switch self {
        case .unsupportedVersion(let v): return "FastCGI version \(v) is not supported"
        case .malformedParams: return "malformed FastCGI name-value pairs"
        case .malformedEndRequest: return "malformed FastCGI END_REQUEST record"
        case .malformedResponseHead(let why): return "malformed CGI response head: \(why)"
        case .responseHeadTooLarge: return "CGI response head is too large"
        }
    }
}

/// FastCGI name-value pairs (specification section 3.4): each length is one byte below 128,
/// otherwise four bytes with the high bit set.
public enum FastCGIParams {
    public static func encode(_ pairs: [(String, String)], into out: inout ByteBuffer) {
        for (name, value) in pairs {
            writeLength(name.utf8.count, into: &out)
            writeLength(value.utf8.count, into: &out)
            out.writeString(name)
            out.writeString(value)
        }
    }

    private static func writeLength(_ length: Int, into out: inout ByteBuffer) {
        if length < 128 {
            out.writeInteger(UInt8(length))
        } else {
            out.writeInteger(UInt32(length) | 0x8000_0000)
        }
    }

    /// Decodes a complete PARAMS stream (all PARAMS contents concatenated).
    public static func decode(_ buffer: ByteBuffer) throws -> [(String, String)] {
        var buffer = buffer
        var pairs: [(String, String)] = []
        func readLength() throws -> Int {
            guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else {
                throw FastCGIError.malformedParams
            }
            if first < 128 {
                buffer.moveReaderIndex(forwardBy: 1)
                return Int(first)
            }
            guard let four = buffer.readInteger(as: UInt32.self) else { throw FastCGIError.malformedParams }
            return Int(four & 0x7fff_ffff)
        }
        while buffer.readableBytes > 0 {
            let nameLength = try readLength()
            let valueLength = try readLength()
            guard let name = buffer.readString(length: nameLength),
                  let value = buffer.readString(length: valueLength)
            else { throw FastCGIError.malformedParams }
            pairs.append((name, value))
        }
        return pairs
    }
}

/// The end of a request as the application reports it (END_REQUEST body).
public struct FastCGIEndRequest: Sendable, Equatable {
    public var appStatus: UInt32
    /// 0 REQUEST_COMPLETE, 1 CANT_MPX_CONN, 2 OVERLOADED, 3 UNKNOWN_ROLE.
    public var protocolStatus: UInt8

    public init(appStatus: UInt32 = 0, protocolStatus: UInt8 = 0) {
        self.appStatus = appStatus
        self.protocolStatus = protocolStatus
    }

    public init(content: ByteBuffer) throws {
        var content = content
        guard let status = content.readInteger(as: UInt32.self), let proto = content.readInteger(as: UInt8.self) else {
            throw FastCGIError.malformedEndRequest
        }
        self.init(appStatus: status, protocolStatus: proto)
    }

    public var content: ByteBuffer {
        var out = ByteBuffer()
        out.writeInteger(appStatus)
        out.writeInteger(protocolStatus)
        out.writeRepeatingByte(0, count: 3)
        return out
    }
}

/// One request in the RESPONDER role, as the bytes a web server would send.
public struct FastCGIRequest: Sendable {
    public var params: [(String, String)]
    public var body: [UInt8]

    public init(params: [(String, String)], body: [UInt8] = []) {
        self.params = params
        self.body = body
    }

    /// BEGIN_REQUEST (role RESPONDER, flags 0: the application closes the connection when done),
    /// PARAMS records and the empty PARAMS that ends them, STDIN records and the empty STDIN.
    public func records(requestID: UInt16 = 1) -> [FastCGIRecord] {
        var begin = ByteBuffer()
        begin.writeInteger(UInt16(1))  // FCGI_RESPONDER
        begin.writeInteger(UInt8(0))  // flags: no FCGI_KEEP_CONN
        begin.writeRepeatingByte(0, count: 5)
        var records = [FastCGIRecord(kind: .beginRequest, requestID: requestID, content: begin)]

        var encoded = ByteBuffer()
        FastCGIParams.encode(params, into: &encoded)
        records += Self.split(encoded, kind: .params, requestID: requestID)
        records.append(FastCGIRecord(kind: .params, requestID: requestID))
        records += Self.split(ByteBuffer(bytes: body), kind: .stdin, requestID: requestID)
        records.append(FastCGIRecord(kind: .stdin, requestID: requestID))
        return records
    }

    /// The whole request as one buffer, ready to write.
    public func encoded(requestID: UInt16 = 1) -> ByteBuffer {
        var out = ByteBuffer()
        for record in records(requestID: requestID) { record.write(to: &out) }
        return out
    }

    private static func split(_ stream: ByteBuffer, kind: FastCGIRecord.Kind, requestID: UInt16) -> [FastCGIRecord] {
        var stream = stream
        var records: [FastCGIRecord] = []
        while stream.readableBytes > 0 {
            let chunk = stream.readSlice(length: min(stream.readableBytes, FastCGIRecord.maxContentLength))!
            records.append(FastCGIRecord(kind: kind, requestID: requestID, content: chunk))
        }
        return records
    }
}

/// Splits a byte stream into FastCGI records, for NIO pipelines (the client and test responders).
public struct FastCGIRecordDecoder: ByteToMessageDecoder {
    public typealias InboundOut = FastCGIRecord

    public init() {}

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let record = try FastCGIRecord.read(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(record))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while let record = try FastCGIRecord.read(from: &buffer) {
            context.fireChannelRead(Self.wrapInboundOut(record))
        }
        return .needMoreData
    }
}
