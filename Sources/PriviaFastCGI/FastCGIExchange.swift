import CFastCGI
import Foundation
import PriviaHTTP

/// One accepted FastCGI request: reads it into an `HTTPRequest` and writes an `HTTPResponse`
/// back through libfcgi's streams.
final class FastCGIExchange: ResponseStream {
    private let request: UnsafeMutablePointer<FCGX_Request>
    /// The connection is broken: nothing more can be written.
    private var failed = false
    /// The peer shut down its writing side (the relay's stop): the turn ends, and its last
    /// event can still be written.
    private var stopAsked = false

    init(_ request: UnsafeMutablePointer<FCGX_Request>) {
        self.request = request
    }

    /// Largest body read; nginx's client_max_body_size is the real limit, this is a backstop.
    static let maxBodyBytes = 8 << 20

    /// The CGI params an `HTTPRequest` is made of; nginx sends a few dozen, the rest are skipped
    /// before any string is made of them.
    private static let wanted: [[UInt8]] = [
        "REQUEST_METHOD", "REQUEST_URI", "DOCUMENT_URI", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
        "REQUEST_ID", "REMOTE_ADDR",
    ].map { Array($0.utf8) }

    /// Copies everything out of libfcgi at once: its param strings die at the next accept.
    /// Works on bytes: this runs for every param of every request.
    func readRequest() -> HTTPRequest {
        // Sized for a browser's dozen headers and the wanted params, so neither table regrows.
        var headers = [String: String](minimumCapacity: 24)
        var params = [String: String](minimumCapacity: Self.wanted.count)
        if var entry = request.pointee.envp {
            while let pointer = entry.pointee {
                let pair = UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self),
                                               count: strlen(pointer))
                if let eq = pair.firstIndex(of: UInt8(ascii: "=")) {
                    let name = pair[..<eq]
                    if eq > 5 && name.starts(with: "HTTP_".utf8) {
                        // HTTP_X_REQUEST_ID → x-request-id
                        let header = name.dropFirst(5).map { byte -> UInt8 in
                            byte == UInt8(ascii: "_") ? UInt8(ascii: "-") : (65...90).contains(byte) ? byte + 32 : byte
                        }
                        headers[String(decoding: header, as: UTF8.self)] = String(decoding: pair[(eq + 1)...], as: UTF8.self)
                    } else if Self.wanted.contains(where: { $0.elementsEqual(name) }) {
                        params[String(decoding: name, as: UTF8.self)] = String(decoding: pair[(eq + 1)...], as: UTF8.self)
                    }
                }
                entry += 1
            }
        }
        if let type = params["CONTENT_TYPE"], !type.isEmpty { headers["content-type"] = type }
        let path: String
        if let documentURI = params["DOCUMENT_URI"] {
            path = documentURI  // nginx's normalised, decoded path
        } else {
            let uri = params["REQUEST_URI"] ?? "/"
            let pathPart = String(uri.prefix(while: { $0 != "?" }))
            path = pathPart.removingPercentEncoding ?? pathPart
        }
        let queryString = params["QUERY_STRING"] ?? ""
        let query = queryString.isEmpty ? [:] : HTTPRequest.parseQuery(Substring(queryString))
        let length = min(Int(params["CONTENT_LENGTH"] ?? "") ?? 0, Self.maxBodyBytes)
        var body = [UInt8](repeating: 0, count: length)
        if length > 0 {
            let read = body.withUnsafeMutableBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: length) {
                    FCGX_GetStr($0, Int32(length), request.pointee.in)
                }
            }
            body.removeLast(length - Int(max(0, read)))
        }
        drainInput()
        return HTTPRequest(method: params["REQUEST_METHOD"] ?? "GET", path: path, query: query, headers: headers,
                           body: body, requestID: params["REQUEST_ID"] ?? "", remoteAddress: params["REMOTE_ADDR"] ?? "")
    }

    /// Reads the request's input to its end (the empty FCGI_STDIN record the peer sends after
    /// the body), discarding whatever is past `maxBodyBytes`. The worker closes the connection
    /// as soon as the response is written; closing it on a peer still sending would break
    /// that peer's pipe (nginx would answer 502 for a response it never read).
    private func drainInput() {
        // On the stack: almost always there is nothing left but that empty record.
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { scratch in
            while FCGX_GetStr(scratch.baseAddress!, Int32(scratch.count), request.pointee.in) > 0 {}
        }
    }

    /// Writes the CGI status line and headers, then the body (or runs the stream producer).
    func write(_ response: HTTPResponse) {
        var head = "Status: \(response.status) \(HTTPResponse.reason(response.status))\r\n"
        for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
        switch response.body {
        case .bytes(let bytes):
            head += "Content-Length: \(bytes.count)\r\n\r\n"
            put(Array(head.utf8))
            put(bytes)
        case .stream(let produce):
            head += "\r\n"
            _ = send(Array(head.utf8))
            produce(self)
        }
    }

    private func put(_ bytes: [UInt8]) {
        guard !failed, !bytes.isEmpty else { return }
        let written = bytes.withUnsafeBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                FCGX_PutStr($0, Int32(buffer.count), request.pointee.out)
            }
        }
        if written < 0 { failed = true }
    }

    // MARK: ResponseStream

    func send(_ bytes: [UInt8]) -> Bool {
        put(bytes)
        // A client that left is seen here: nginx closed the connection, the flush gets EPIPE.
        if !failed && FCGX_FFlush(request.pointee.out) < 0 { failed = true }
        return !failed
    }

    /// Polls the connection, without writing, for the peer leaving or asking to stop. Two
    /// peers stop a turn in two ways: nginx closes the whole upstream connection when its
    /// client goes away (fastcgi_ignore_client_abort off), and the relay only shuts down its
    /// writing side when its client sends `stop`, then waits for the turn's last event.
    func clientGone(within duration: Duration) -> Bool {
        if failed || stopAsked { return true }
        var descriptor = pollfd(fd: request.pointee.ipcFd, events: Self.peerClosedEvents, revents: 0)
        // Whole milliseconds, rounded up so a wait never ends before its time. A signal
        // (-1, EINTR) ends it early with the client still there; callers loop.
        let (seconds, attoseconds) = max(duration, .zero).components
        let milliseconds = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        if poll(&descriptor, 1, Int32(clamping: milliseconds)) > 0 {
            if descriptor.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 {
                failed = true
            } else if descriptor.revents & Self.peerStoppedWriting != 0 {
                // Over a unix socket a closed peer shows POLLHUP as well. Over TCP a close looks
                // like this half-close; the next write then fails, as a closed client's does.
                stopAsked = true
            }
        }
        return failed || stopAsked
    }

    // POLLRDHUP (Linux, 0x2000) is set when the peer shut down its writing side (or closed);
    // POLLHUP when both directions are shut.
    private static let peerStoppedWriting = Int16(0x2000)
    private static let peerClosedEvents = peerStoppedWriting | Int16(POLLHUP)
}
