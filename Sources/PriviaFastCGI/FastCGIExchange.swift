import CFastCGI
import Foundation
import PriviaHTTP

/// One accepted FastCGI request: reads it into an `HTTPRequest` and writes an `HTTPResponse`
/// back through libfcgi's streams.
final class FastCGIExchange: ResponseStream {
    private let request: UnsafeMutablePointer<FCGX_Request>
    private var failed = false

    init(_ request: UnsafeMutablePointer<FCGX_Request>) {
        self.request = request
    }

    /// Largest body read; nginx's client_max_body_size is the real limit, this is a backstop.
    static let maxBodyBytes = 8 << 20

    /// Copies everything out of libfcgi at once: its param strings die at the next accept.
    func readRequest() -> HTTPRequest {
        var headers: [String: String] = [:]
        var params: [String: String] = [:]
        if var entry = request.pointee.envp {
            while let pointer = entry.pointee {
                let pair = String(cString: pointer)
                if let eq = pair.firstIndex(of: "=") {
                    let name = String(pair[..<eq])
                    let value = String(pair[pair.index(after: eq)...])
                    if name.hasPrefix("HTTP_") {
                        headers[name.dropFirst(5).replacingOccurrences(of: "_", with: "-").lowercased()] = value
                    } else {
                        params[name] = value
                    }
                }
                entry += 1
            }
        }
        if let type = params["CONTENT_TYPE"], !type.isEmpty { headers["content-type"] = type }
        let uri = params["REQUEST_URI"] ?? params["DOCUMENT_URI"] ?? "/"
        let pathPart = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let path = params["DOCUMENT_URI"] ?? (String(pathPart).removingPercentEncoding ?? String(pathPart))
        let query = HTTPRequest.parseQuery(Substring(params["QUERY_STRING"] ?? ""))
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
        return HTTPRequest(method: params["REQUEST_METHOD"] ?? "GET", path: path, query: query, headers: headers,
                           body: body, requestID: params["REQUEST_ID"] ?? "", remoteAddress: params["REMOTE_ADDR"] ?? "")
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

    /// Polls the connection for the peer's half-close without writing: nginx closes the
    /// upstream connection when its client goes away (fastcgi_ignore_client_abort off).
    var clientGone: Bool {
        if failed { return true }
        var descriptor = pollfd(fd: request.pointee.ipcFd, events: Self.peerClosedEvents, revents: 0)
        if poll(&descriptor, 1, 0) > 0, descriptor.revents & (Self.peerClosedEvents | Int16(POLLERR | POLLNVAL)) != 0 {
            failed = true
        }
        return failed
    }

    // POLLRDHUP (Linux, 0x2000) is set only when the peer shut down its writing side;
    // POLLHUP when both sides are gone.
    private static let peerClosedEvents = Int16(0x2000) | Int16(POLLHUP)
}
