import Foundation
import PriviaCore
import PriviaSupport
import Synchronization

/// JSON lines on stderr: `{"ts":…,"level":…,"msg":…, …fields}`, one per event.
public final class RelayLog: Sendable {
    public enum Level: Int, Sendable, Comparable {
        case debug, info, warning, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        var name: String { ["debug", "info", "warning", "error"][rawValue] }
    }

    /// The process's log; `privia-relay` sets its level at start-up.
    public static let shared = RelayLog()

    private let state = Mutex<(level: Level, sink: (@Sendable (String) -> Void)?)>((.info, nil))

    public init() {}

    public var level: Level {
        get { state.withLock { $0.level } }
        set { state.withLock { $0.level = newValue } }
    }

    /// Redirects lines (tests capture them); nil writes to stderr.
    public func setSink(_ sink: (@Sendable (String) -> Void)?) {
        state.withLock { $0.sink = sink }
    }

    public func log(_ level: Level, _ message: String, _ fields: [String: JSON] = [:]) {
        let (minimum, sink) = state.withLock { ($0.level, $0.sink) }
        guard level >= minimum else { return }
        var members: [(String, JSON)] = [("ts", .string(Timestamp.now())), ("level", .string(level.name)), ("msg", .string(message))]
        for key in fields.keys.sorted() { members.append((key, fields[key]!)) }
        let line = JSON.object(members).text
        if let sink {
            sink(line)
        } else {
            // One write per line, so lines from several threads never interleave.
            let bytes = Array((line + "\n").utf8)
            bytes.withUnsafeBufferPointer { _ = write(2, $0.baseAddress, $0.count) }
        }
    }

    public func debug(_ message: String, _ fields: [String: JSON] = [:]) { log(.debug, message, fields) }
    public func info(_ message: String, _ fields: [String: JSON] = [:]) { log(.info, message, fields) }
    public func warning(_ message: String, _ fields: [String: JSON] = [:]) { log(.warning, message, fields) }
    public func error(_ message: String, _ fields: [String: JSON] = [:]) { log(.error, message, fields) }
}
