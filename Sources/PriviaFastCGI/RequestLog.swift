import Foundation
import PriviaCore
import PriviaHTTP
import PriviaSupport

/// One JSON line per request on stderr: id, method, path, status, duration, user when known.
/// Never a body, a password, a token or message content.
enum RequestLog {
    static func write(_ request: HTTPRequest, _ response: HTTPResponse, started: UInt64, pid: Int32) {
        let micros = (DispatchTime.now().uptimeNanoseconds - started) / 1000
        // Written straight to bytes: this runs once per request.
        var line = JSONWriter(capacity: 320)
        line.object { line in
            line.member("ts", Timestamp.now())
            line.member("level", "info")
            line.member("msg", "request")
            line.member("request_id", request.requestID)
            line.member("method", request.method)
            line.member("path", request.path)
            line.member("status", response.status)
            line.key("duration_ms")
            line.double(Double(micros) / 1000)
            line.member("user_id", JSON.optional(response.userID))
            line.member("pid", Int(pid))
        }
        var bytes = line.bytes
        bytes.append(0x0a)
        bytes.withUnsafeBufferPointer { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

