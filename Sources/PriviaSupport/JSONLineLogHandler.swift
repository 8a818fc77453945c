import Foundation
import Logging
import Synchronization

/// swift-log's handler for Privia's processes: one JSON object per event on stderr,
/// `{"ts":…,"level":…,"msg":…,"pid":…, …metadata}`, written with one system call so lines from
/// several threads never interleave. Metadata made from numbers and booleans stays a JSON number
/// or boolean; everything else is a string.
///
/// The level is one for the whole process (`minimumLevel`): the process sets it once from its
/// settings, tests lower the noise with it.
public struct JSONLineLogHandler: LogHandler {
    private static let level = Atomic<Int>(Logger.Level.allCases.firstIndex(of: .info)!)

    /// The least severe level any Privia logger writes.
    public static var minimumLevel: Logger.Level {
        get { Logger.Level.allCases[level.load(ordering: .relaxed)] }
        set { level.store(Logger.Level.allCases.firstIndex(of: newValue)!, ordering: .relaxed) }
    }

    public var metadata: Logger.Metadata = [:]

    public var logLevel: Logger.Level {
        get { Self.minimumLevel }
        set {}  // one level per process: see `minimumLevel`
    }

    public init(label: String) {}

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = JSONWriter(capacity: 256)
        line.object { line in
            line.member("ts", Timestamp.now())
            line.member("level", event.level.rawValue)
            line.member("msg", event.message.description)
            line.member("pid", Int(getpid()))
            let merged = event.metadata.map { metadata.merging($0) { $1 } } ?? metadata
            for key in merged.keys.sorted() {
                line.key(dynamic: key)
                Self.json(merged[key]!).writeJSON(to: &line)
            }
        }
        var bytes = line.bytes
        bytes.append(0x0a)
        bytes.withUnsafeBufferPointer { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }

    static func json(_ value: Logger.Metadata.Value) -> JSON {
        switch value {
        case .string(let text): return .string(text)
        case .stringConvertible(let number as Int): return .int(number)
        case .stringConvertible(let number as Double): return .double(number)
        case .stringConvertible(let flag as Bool): return .bool(flag)
        case .stringConvertible(let other): return .string(other.description)
        case .array(let values): return .array(values.map(json))
        case .dictionary(let members): return .object(members.keys.sorted().map { ($0, json(members[$0]!)) })
        }
    }
}

extension Logger {
    /// A logger writing JSON lines through `JSONLineLogHandler`, whatever the process bootstrapped.
    public static func privia(_ label: String) -> Logger {
        Logger(label: label, factory: JSONLineLogHandler.init)
    }
}
