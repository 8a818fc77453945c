import Atomics
import Foundation

/// A counter every process of one database shares: one 8-byte word of `<database>-accounts`,
/// mapped into memory. A change that can alter who a token belongs to, or whether it still
/// counts (a sign-out, an OAuth sign-in updating a user), moves it once committed; a process
/// keeps a token's check (`KnownTokens`) only while the counter has not moved.
///
/// Reading it is a memory load, where asking SQLite again was a query on every request.
final class AccountsEpoch: @unchecked Sendable {
    private let counter: UnsafeAtomic<UInt64>

    /// Nil when the file cannot be opened, given its disk block or mapped (a read-only directory,
    /// a full disk, an in-memory database): then nothing is cached and every request asks the database.
    init?(databasePath: String) {
        guard databasePath != ":memory:" else { return nil }
        let size = MemoryLayout<UInt64>.size
        let descriptor = open(databasePath + "-accounts", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        // The word's disk block is allocated now, not at the first touch of the mapping: a file
        // grown by ftruncate has none, and touching a mapped hole on a full disk is SIGBUS, which
        // killed every worker that authenticated a request. A short file grows with zeros; a file
        // already this long keeps its count (and gets a block if it had only a hole).
        guard posix_fallocate(descriptor, 0, off_t(size)) == 0,
              let memory = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0), memory != MAP_FAILED
        else { return nil }
        // Mapped for the life of the process: the counter is never unmapped.
        counter = UnsafeAtomic(at: memory.bindMemory(to: UInt64.AtomicRepresentation.self, capacity: 1))
    }

    var value: UInt64 { counter.load(ordering: .acquiring) }

    /// Called after the change has committed, so a process that sees the new value also sees the change.
    func advance() { counter.wrappingIncrement(ordering: .releasing) }
}
