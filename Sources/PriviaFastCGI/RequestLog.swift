import Foundation
import PriviaCore
import PriviaHTTP

/// One JSON line per request on stderr: id, method, path, status, duration, user when known.
/// Never a body, a password, a token or message content.
enum RequestLog {
    static func write(_ request: HTTPRequest, _ response: HTTPResponse, started: UInt64, pid: Int32) {
        let micros = (DispatchTime.now().uptimeNanoseconds - started) / 1000
        let line: JSON = [
            "ts": .string(Timestamp.now()), "level": "info", "msg": "request",
            "request_id": .string(request.requestID), "method": .string(request.method),
            "path": .string(request.path), "status": .int(response.status),
            "duration_ms": .double(Double(micros) / 1000), "user_id": .optional(response.userID),
            "pid": .int(Int(pid)),
        ]
        var bytes = line.encoded()
        bytes.append(0x0a)
        bytes.withUnsafeBufferPointer { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

