import NIOCore
import Testing
@testable import PriviaRelay

@Suite struct FastCGIRecordTests {
    @Test func recordRoundTripsWithPadding() throws {
        for length in [0, 1, 7, 8, 9, 100, 65_535] {
            let content = ByteBuffer(bytes: (0..<length).map { UInt8($0 % 251) })
            let record = FastCGIRecord(kind: .stdout, requestID: 3, content: content)
            var wire = ByteBuffer()
            record.write(to: &wire)
            #expect(wire.readableBytes % 8 == 0, "padded to 8 bytes for length \(length)")
            #expect(wire.readableBytes == 8 + length + (8 - length % 8) % 8)
            #expect(wire.getInteger(at: 6, as: UInt8.self) == UInt8((8 - length % 8) % 8))
            let decoded = try #require(try FastCGIRecord.read(from: &wire))
            #expect(decoded == record)
            #expect(wire.readableBytes == 0)
        }
    }

    @Test func partialRecordsWaitForMoreBytes() throws {
        var wire = ByteBuffer()
        FastCGIRecord(kind: .stdout, content: ByteBuffer(string: "hello")).write(to: &wire)
        let whole = wire
        for cut in 0..<whole.readableBytes {
            var part = whole.getSlice(at: 0, length: cut)!
            #expect(try FastCGIRecord.read(from: &part) == nil)
            #expect(part.readableBytes == cut, "nothing consumed")
        }
    }

    @Test func wrongVersionIsRefused() {
        var wire = ByteBuffer(bytes: [2, 6, 0, 1, 0, 0, 0, 0])
        #expect(throws: FastCGIError.unsupportedVersion(2)) { try FastCGIRecord.read(from: &wire) }
    }

    @Test func paramsUseOneAndFourByteLengths() throws {
        let long = String(repeating: "x", count: 200)
        let huge = String(repeating: "y", count: 70_000)
        let pairs = [("A", "1"), ("NAME_127_" + String(repeating: "n", count: 118), "v"), (long, huge), ("EMPTY", "")]
        var encoded = ByteBuffer()
        FastCGIParams.encode(pairs, into: &encoded)
        #expect(encoded.getBytes(at: 0, length: 2) == [1, 1])  // one-byte lengths
        let decoded = try FastCGIParams.decode(encoded)
        #expect(decoded.map(\.0) == pairs.map(\.0))
        #expect(decoded.map(\.1) == pairs.map(\.1))

        var four = ByteBuffer()
        FastCGIParams.encode([(long, "")], into: &four)
        #expect(four.getInteger(at: 0, as: UInt32.self) == UInt32(0x8000_00C8))
        #expect(four.getInteger(at: 4, as: UInt8.self) == 0)
    }

    @Test func truncatedParamsAreRefused() {
        var encoded = ByteBuffer()
        FastCGIParams.encode([("NAME", "VALUE")], into: &encoded)
        let cut = encoded.getSlice(at: 0, length: encoded.readableBytes - 1)!
        #expect(throws: FastCGIError.malformedParams) { try FastCGIParams.decode(cut) }
    }

    @Test func requestIsBeginParamsEmptyParamsStdinEmptyStdin() throws {
        let body = [UInt8](repeating: 65, count: 70_000)
        let request = FastCGIRequest(params: [("REQUEST_METHOD", "POST"), ("BIG", String(repeating: "z", count: 66_000))],
                                     body: body)
        var wire = request.encoded(requestID: 1)
        var records: [FastCGIRecord] = []
        while let record = try FastCGIRecord.read(from: &wire) { records.append(record) }
        #expect(records.map(\.kind) == [.beginRequest, .params, .params, .params, .stdin, .stdin, .stdin])
        #expect(records.allSatisfy { $0.requestID == 1 })
        var begin = records[0].content
        #expect(begin.readInteger(as: UInt16.self) == 1)  // RESPONDER
        #expect(begin.readInteger(as: UInt8.self) == 0)  // no KEEP_CONN
        #expect(records[3].content.readableBytes == 0 && records[6].content.readableBytes == 0)

        var params = ByteBuffer()
        for record in records where record.kind == .params { var c = record.content; params.writeBuffer(&c) }
        let pairs = try FastCGIParams.decode(params)
        #expect(pairs.first?.1 == "POST" && pairs.last?.1.count == 66_000)
        let stdin = records.filter { $0.kind == .stdin }.reduce(0) { $0 + $1.content.readableBytes }
        #expect(stdin == 70_000)
    }

    @Test func endRequestRoundTrips() throws {
        let end = FastCGIEndRequest(appStatus: 7, protocolStatus: 0)
        #expect(try FastCGIEndRequest(content: end.content) == end)
        #expect(end.content.readableBytes == 8)
        #expect(throws: FastCGIError.malformedEndRequest) { try FastCGIEndRequest(content: ByteBuffer(bytes: [0, 0])) }
    }
}

@Suite struct CGIResponseParserTests {
    @Test func headAndBodyInOneChunk() throws {
        var parser = CGIResponseParser()
        let outputs = try parser.feed(ByteBuffer(string: "Status: 404 Not Found\r\nContent-Type: application/json\r\n\r\n{\"x\":1}"))
        #expect(outputs == [
            .head(CGIResponseHead(status: 404, headers: [("Content-Type", "application/json")])),
            .body(ByteBuffer(string: "{\"x\":1}")),
        ])
        #expect(try parser.feed(ByteBuffer(string: "more")) == [.body(ByteBuffer(string: "more"))])
    }

    @Test func headSplitAnywhere() throws {
        let text = "Status: 200 OK\r\nContent-Type: text/event-stream\r\nX-Accel-Buffering: no\r\n\r\ndata: a\n\n"
        let bytes = Array(text.utf8)
        for cut in 1..<bytes.count {
            var parser = CGIResponseParser()
            var outputs = try parser.feed(ByteBuffer(bytes: bytes[..<cut]))
            outputs += try parser.feed(ByteBuffer(bytes: bytes[cut...]))
            guard case .head(let head)? = outputs.first else { Issue.record("no head at cut \(cut)"); continue }
            #expect(head.status == 200)
            #expect(head.header("content-type") == "text/event-stream")
            var body = ""
            for case .body(let buffer) in outputs { body += String(buffer: buffer) }
            #expect(body == "data: a\n\n", "cut \(cut)")
        }
    }

    @Test func bareLineFeedsAndDefaultStatus() throws {
        var parser = CGIResponseParser()
        let outputs = try parser.feed(ByteBuffer(string: "Content-Type: text/plain\n\nhi"))
        #expect(outputs.first == .head(CGIResponseHead(status: 200, headers: [("Content-Type", "text/plain")])))
    }

    @Test func oversizedHeadIsRefused() {
        var parser = CGIResponseParser()
        let junk = ByteBuffer(string: "X: " + String(repeating: "a", count: CGIResponseParser.maxHeadLength + 10))
        #expect(throws: FastCGIError.responseHeadTooLarge) { try parser.feed(junk) }
    }

    @Test func badStatusIsRefused() {
        var parser = CGIResponseParser()
        #expect(throws: FastCGIError.self) { try parser.feed(ByteBuffer(string: "Status: abc\r\n\r\n")) }
    }
}
