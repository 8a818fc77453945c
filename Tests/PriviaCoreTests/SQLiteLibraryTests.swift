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

    /// Text is bound by its length, not as a C string: nothing after a NUL is lost.
    @Test func textHoldingANulIsStoredWhole() throws {
        let connection = try SQLiteConnection(path: ":memory:")
        try connection.execute("CREATE TABLE t (x TEXT NOT NULL)")
        for text in ["before\u{0}after", "\u{0}", "", "é\u{0}🙂"] {
            try connection.run("DELETE FROM t")
            try connection.run("INSERT INTO t VALUES (?)", [text])
            let stored = try connection.first("SELECT x, length(CAST(x AS BLOB)), x = ? FROM t", [text]) {
                ($0.string(0), $0.int(1), $0.int(2))
            }
            #expect(stored?.0 == text)
            #expect(stored?.1 == text.utf8.count)
            #expect(stored?.2 == 1, "a bound value compares whole too")
        }
    }
}
