import Foundation
import PriviaSupport

/// Structured log lines for process events (start, stop, worker restarts).
public enum ProcessLog {
    public static func info(_ message: String, _ fields: [(String, JSON)] = []) { emit("info", message, fields) }
    public static func error(_ message: String, _ fields: [(String, JSON)] = []) { emit("error", message, fields) }

    static func emit(_ level: String, _ message: String, _ fields: [(String, JSON)]) {
        var bytes = JSON.object([("ts", .string(Timestamp.now())), ("level", .string(level)), ("msg", .string(message)),
                                 ("pid", .int(Int(getpid())))] + fields).encoded()
        bytes.append(0x0a)
        bytes.withUnsafeBufferPointer { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
