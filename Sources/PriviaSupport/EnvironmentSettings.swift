import Foundation

/// Reads settings from environment variables: the pool, the relay and the command line all read
/// their configuration through this one reader, so every variable follows the same rules.
///
/// - An empty value counts as unset.
/// - A secret `NAME` may come instead from the file `NAME_FILE` names (how container and
///   systemd credentials are mounted); a final line break is dropped. Setting both is an error.
/// - A value out of range or of the wrong kind is an error that names the variable and says
///   what it must be; the process refuses to start rather than guess.
///
/// Every value read is remembered with where it came from, so `privia check-config` can print
/// the effective settings, secrets redacted.
public final class EnvironmentSettings {
    public enum Source: String, Sendable { case environment, file, `default` }

    /// One setting as it was read: its effective value, and whether to hide it when printed.
    public struct Entry: Sendable {
        public var name: String
        public var value: String
        public var source: Source
        public var secret: Bool

        /// The value as an operator may see it: a secret only says that it is set, and how long.
        public var printable: String {
            if value.isEmpty { return "(unset)" }
            return secret ? "(secret, \(value.utf8.count) characters, from \(source == .file ? "file" : "environment"))" : value
        }
    }

    private let environment: [String: String]
    public private(set) var entries: [Entry] = []

    public init(_ environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    private func raw(_ name: String) -> String? {
        environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    private func record(_ name: String, _ value: String, _ source: Source, secret: Bool = false) {
        entries.removeAll { $0.name == name }
        entries.append(Entry(name: name, value: value, source: source, secret: secret))
    }

    /// A text setting, or nil when unset.
    public func string(_ name: String) -> String? {
        let value = raw(name)
        record(name, value ?? "", value == nil ? .default : .environment)
        return value
    }

    /// A text setting with a default.
    public func string(_ name: String, default fallback: String) -> String {
        guard let value = raw(name) else {
            record(name, fallback, .default)
            return fallback
        }
        record(name, value, .environment)
        return value
    }

    /// A secret: `NAME`, or the contents of the file `NAME_FILE` names; nil when neither is set.
    public func secret(_ name: String) throws -> String? {
        let fileName = name + "_FILE"
        switch (raw(name), raw(fileName)) {
        case (.some, .some):
            throw ConfigurationError("\(name) and \(fileName) are both set; use one")
        case (let value?, nil):
            record(name, value, .environment, secret: true)
            return value
        case (nil, let path?):
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError("\(fileName): cannot read \(path)")
            }
            var value = String(decoding: contents, as: UTF8.self)
            while value.hasSuffix("\n") || value.hasSuffix("\r") { value.removeLast() }
            guard !value.isEmpty else { throw ConfigurationError("\(fileName): \(path) is empty") }
            record(name, value, .file, secret: true)
            return value
        case (nil, nil):
            record(name, "", .default, secret: true)
            return nil
        }
    }

    /// A whole number in `range`, or `fallback` when unset.
    public func int(_ name: String, default fallback: Int, in range: ClosedRange<Int>) throws -> Int {
        try optionalInt(name, in: range) ?? {
            record(name, String(fallback), .default)
            return fallback
        }()
    }

    /// A whole number in `range`, or nil when unset.
    public func optionalInt(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = raw(name) else {
            record(name, "", .default)
            return nil
        }
        guard let value = Int(text), range.contains(value) else {
            let upper = range.upperBound == Int.max ? "" : String(range.upperBound)
            throw ConfigurationError("\(name) must be a whole number in \(range.lowerBound)...\(upper), not '\(text)'")
        }
        record(name, text, .environment)
        return value
    }

    /// A number of zero or more, or `fallback` when unset.
    public func decimal(_ name: String, default fallback: Double) throws -> Double {
        guard let text = raw(name) else {
            record(name, String(fallback), .default)
            return fallback
        }
        guard let value = Double(text), value >= 0, value.isFinite else {
            throw ConfigurationError("\(name) must be a number of zero or more, not '\(text)'")
        }
        record(name, text, .environment)
        return value
    }

    /// One of a fixed set of words (case-insensitive), or `fallback` when unset.
    public func choice<Value: RawRepresentable<String> & CaseIterable>(_ name: String, default fallback: Value) throws -> Value {
        guard let text = raw(name) else {
            record(name, fallback.rawValue, .default)
            return fallback
        }
        guard let value = Value(rawValue: text.lowercased()) else {
            let names = Value.allCases.map(\.rawValue)
            throw ConfigurationError("\(name) must be \(names.dropLast().joined(separator: ", ")) or \(names.last!), not '\(text)'")
        }
        record(name, value.rawValue, .environment)
        return value
    }

    /// `on` or `off` (also `true`/`false`, `yes`/`no`, `1`/`0`), or `fallback` when unset.
    public func flag(_ name: String, default fallback: Bool) throws -> Bool {
        guard let text = raw(name) else {
            record(name, fallback ? "on" : "off", .default)
            return fallback
        }
        switch text.lowercased() {
        case "on", "true", "yes", "1": record(name, "on", .environment); return true
        case "off", "false", "no", "0": record(name, "off", .environment); return false
        default: throw ConfigurationError("\(name) must be on or off, not '\(text)'")
        }
    }

    /// A path, made absolute against the working directory, or `fallback` (made absolute too).
    public func path(_ name: String, default fallback: String) -> String {
        let value = Self.absolute(raw(name) ?? fallback)
        record(name, value, raw(name) == nil ? .default : .environment)
        return value
    }

    public static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return FileManager.default.currentDirectoryPath + "/" + (path.hasPrefix("./") ? String(path.dropFirst(2)) : path)
    }
}

/// A configuration a process refuses to start with; the message says how to fix it.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
