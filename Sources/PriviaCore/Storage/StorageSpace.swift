import Atomics
import Foundation

/// Whether the database's filesystem has room for writes, as `/api/health` reports it.
///
/// Two signs, because neither is enough alone. Free space can look fine while a write that
/// needs more than is left fails; and a write can succeed on a nearly full disk, because SQLite
/// reuses WAL pages it already allocated. So storage is low when the free space is below
/// `lowWaterBytes`, or when a write of this process failed for want of space and since then
/// neither has a write succeeded nor has the free space grown by `lowWaterBytes`.
public final class StorageSpace: @unchecked Sendable {
    /// Room for the WAL to grow to its checkpoint size (`GroupCommit.checkpointFrames` pages of
    /// 4 KiB) twice over.
    public static let lowWaterBytes: UInt64 = 8 << 20

    private let availableBytes: @Sendable () -> UInt64?
    private let lock = NSLock()
    /// The free space when a write last failed for want of it; nil once a write succeeded.
    private var availableAtFailure: UInt64?
    /// Mirrors `availableAtFailure != nil`, so a successful write costs one load, not a lock.
    private let failed = ManagedAtomic(false)

    /// Measures the free space of the filesystem holding `path`.
    public convenience init(path: String) {
        self.init { Self.availableBytes(onFilesystemOf: path) }
    }

    /// `availableBytes` gives the free space (nil when it cannot be measured).
    public init(availableBytes: @escaping @Sendable () -> UInt64?) {
        self.availableBytes = availableBytes
    }

    /// The bytes an unprivileged process may still write on the filesystem holding `path`
    /// (root can dip into reserved blocks beyond this, so a disk in its reserve counts as low).
    public static func availableBytes(onFilesystemOf path: String) -> UInt64? {
        var status = statvfs()
        guard statvfs(path, &status) == 0 else { return nil }
        return UInt64(status.f_bavail) * UInt64(status.f_frsize)
    }

    /// True while writes are failing, or about to fail, for want of space.
    public var isLow: Bool {
        let available = availableBytes()
        if let available, available < Self.lowWaterBytes { return true }
        return lock.withLock {
            guard let atFailure = availableAtFailure else { return false }
            guard let available else { return true }
            return available < atFailure + Self.lowWaterBytes
        }
    }

    func writeFailedForSpace() {
        let available = availableBytes() ?? 0
        lock.withLock {
            availableAtFailure = available
            failed.store(true, ordering: .relaxed)
        }
    }

    func writeSucceeded() {
        guard failed.load(ordering: .relaxed) else { return }
        lock.withLock {
            availableAtFailure = nil
            failed.store(false, ordering: .relaxed)
        }
    }
}
