import Foundation
import PriviaSupport
import Testing
@testable import PriviaCore

@Suite struct AccountsEpochTests {
    /// The accounts counter is a mapped file: a page of it with no disk block behind it is
    /// SIGBUS on the first touch once the disk is full, which killed every worker that
    /// authenticated a request. Its block is allocated when it is opened, even for a file an
    /// older version left without one.
    @Test func theAccountsCounterHasItsDiskBlockBeforeItIsMapped() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("privia-epoch-\(newID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func blocks(_ path: String) -> Int {
            var status = stat()
            return stat(path, &status) == 0 ? Int(status.st_blocks) : -1
        }
        let fresh = try #require(AccountsEpoch(databasePath: directory + "/fresh.db"))
        #expect(blocks(directory + "/fresh.db-accounts") > 0)
        fresh.advance()
        #expect(fresh.value == 1)

        let sparse = directory + "/old.db-accounts"
        let descriptor = open(sparse, O_RDWR | O_CREAT, 0o600)
        #expect(ftruncate(descriptor, 8) == 0)
        close(descriptor)
        #expect(blocks(sparse) == 0)
        let old = try #require(AccountsEpoch(databasePath: directory + "/old.db"))
        #expect(blocks(sparse) > 0)
        #expect(old.value == 0)
    }
}
