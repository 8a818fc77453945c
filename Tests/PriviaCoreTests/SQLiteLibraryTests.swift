import CSQLite
import Testing
@testable import PriviaCore

/// Library-wide SQLite settings a pool worker relies on.
@Suite struct SQLiteLibraryTests {
    /// With memory statistics on, every SQLite allocation in the process takes one global mutex;
    /// the pool's threads queued on it. Off, SQLite counts nothing.
    @Test func memoryStatisticsAreOffOnceAConnectionIsOpen() throws {
        let connection = try SQLiteConnection(path: ":memory:")
        try connection.execute("CREATE TABLE t (x TEXT); INSERT INTO t VALUES (hex(randomblob(10000)))")
        #expect(sqlite3_memory_used() == 0)
        #expect(sqlite3_memory_highwater(0) == 0)
    }
}
