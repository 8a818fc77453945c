import Foundation
import Testing
@testable import PriviaSupport

@Suite struct EncodingTests {
    @Test func base64URLRoundTripsEveryLengthAndMatchesFoundation() throws {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let encoded = Base64URL.encode(bytes)
            let foundation = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            #expect(encoded == foundation)
            #expect(Base64URL.decode(Substring(encoded)) == bytes)
        }
        #expect(Base64URL.decode("ab+c") == nil, "standard base64's + is not base64url")
        #expect(Base64URL.decode("abcde") == nil, "no length leaves one character over")
    }

    @Test func timestampsAreRFC3339InUTCAndStoredTimeIsPriviasForm() {
        let date = Date(timeIntervalSince1970: 1_770_555_445.194236)  // 2026-02-08 12:57:25.194236 UTC
        #expect(Timestamp.format(date) == "2026-02-08T12:57:25.194236Z")
        let stored = StoredTime.now()
        #expect(stored.count == 26 && Array(stored)[10] == " ")
        #expect(StoredTime.rfc3339("2026-02-08 12:57:25.194236") == "2026-02-08T12:57:25.194236Z")
        #expect(StoredTime.rfc3339("2026-02-08T12:57:25+00:00") == "2026-02-08T12:57:25Z")
        #expect(StoredTime.rfc3339("2026-02-08T12:57:25.5Z") == "2026-02-08T12:57:25.5Z")
        #expect(StoredTime.rfc3339(StoredTime.now()) <= Timestamp.now(), "both read the same clock")
    }

    @Test func idsAreLowerCaseVersion7UUIDsInTheOrderTheyWereMade() throws {
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        let ids = (0..<200).map { _ in newID() }
        let after = UInt64(Date().timeIntervalSince1970 * 1000)
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(UUID(uuidString: id) != nil && id == id.lowercased() && id.count == 36)
            let chars = Array(id)
            #expect(chars[14] == "7" && "89ab".contains(chars[19]))
            let milliseconds = try #require(UInt64(id.replacingOccurrences(of: "-", with: "").prefix(12), radix: 16))
            #expect((before...after).contains(milliseconds))
        }
        // Made in order, they sort in order to the millisecond.
        let times = ids.map { $0.prefix(13) }
        #expect(times == times.sorted())
    }
}
