import Foundation

/// A process as rows that belong to it name it: its pid and when it started (clock ticks after
/// boot, field 22 of `/proc/PID/stat`), so that a pid the kernel has since given to another
/// process is not taken for it. Where there is no `/proc`, the start time is 0 and only the pid
/// counts.
public struct ProcessIdentity: Hashable, Sendable {
    public var pid: Int32
    public var started: Int64

    public init(pid: Int32, started: Int64) {
        self.pid = pid
        self.started = started
    }

    /// The process `pid` as it is now; nil when there is none (or only its zombie).
    public init?(pid: Int32) {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else {
            guard kill(pid, 0) == 0 || errno == EPERM, !FileManager.default.fileExists(atPath: "/proc/self/stat") else { return nil }
            self.init(pid: pid, started: 0)
            return
        }
        // The command name, in parentheses, may hold spaces: the fields that matter follow its last ")".
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, fields[0] != "Z", let started = Int64(fields[19]) else { return nil }
        self.init(pid: pid, started: started)
    }

    /// This process, read once.
    public static let current = ProcessIdentity(pid: getpid()) ?? ProcessIdentity(pid: getpid(), started: 0)

    /// True while this same process runs.
    public var isAlive: Bool { ProcessIdentity(pid: pid) == self }
}
