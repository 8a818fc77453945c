import Foundation
import Testing
@testable import PriviaSupport

@Suite struct EnvironmentSettingsTests {
    @Test func unsetAndEmptyValuesTakeTheDefault() throws {
        let settings = EnvironmentSettings(["PRIVIA_THREADS": ""])
        #expect(try settings.int("PRIVIA_THREADS", default: 512, in: 1...4096) == 512)
        #expect(try settings.int("PRIVIA_WORKERS", default: 1, in: 1...64) == 1)
        #expect(settings.entries.map(\.source) == [.default, .default])
    }

    @Test func aValueOutOfRangeNamesTheVariableAndTheRange() {
        let settings = EnvironmentSettings(["PRIVIA_WORKERS": "0", "PRIVIA_ENV": "staging", "PRIVIA_WS_EVENTS": "maybe"])
        #expect(throws: ConfigurationError.self) { try settings.int("PRIVIA_WORKERS", default: 1, in: 1...64) }
        do {
            _ = try settings.int("PRIVIA_WORKERS", default: 1, in: 1...64)
        } catch {
            #expect("\(error)" == "PRIVIA_WORKERS must be a whole number in 1...64, not '0'")
        }
        enum Mode: String, CaseIterable { case development, production }
        #expect(throws: ConfigurationError.self) { try settings.choice("PRIVIA_ENV", default: Mode.development) }
        #expect(throws: ConfigurationError.self) { try settings.flag("PRIVIA_WS_EVENTS", default: true) }
    }

    @Test func aSecretComesFromItsFileWithoutTheFinalLineBreak() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("privia-secret-\(UUID().uuidString)")
        try "s3cret-value\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let settings = EnvironmentSettings(["PRIVIA_SECRET_KEY_FILE": file.path])
        #expect(try settings.secret("PRIVIA_SECRET_KEY") == "s3cret-value")
        let entry = try #require(settings.entries.first)
        #expect(entry.source == .file && entry.secret)
        #expect(!entry.printable.contains("s3cret"))

        let both = EnvironmentSettings(["PRIVIA_SECRET_KEY": "x", "PRIVIA_SECRET_KEY_FILE": file.path])
        #expect(throws: ConfigurationError.self) { try both.secret("PRIVIA_SECRET_KEY") }
        let unreadable = EnvironmentSettings(["PRIVIA_SECRET_KEY_FILE": file.path + ".absent"])
        #expect(throws: ConfigurationError.self) { try unreadable.secret("PRIVIA_SECRET_KEY") }
    }

    @Test func aSecretFromTheEnvironmentIsRedactedToo() throws {
        let settings = EnvironmentSettings(["PRIVIA_OPENAI_API_KEY": "sk-live-123"])
        #expect(try settings.secret("PRIVIA_OPENAI_API_KEY") == "sk-live-123")
        #expect(settings.entries.first?.printable == "(secret, 11 characters, from environment)")
    }

    @Test func relativePathsAreMadeAbsolute() {
        let settings = EnvironmentSettings(["PRIVIA_DATA_DIR": "./var"])
        #expect(settings.path("PRIVIA_DATA_DIR", default: "/x") == FileManager.default.currentDirectoryPath + "/var")
        #expect(settings.path("PRIVIA_MIGRATIONS_DIR", default: "/usr/share/privia") == "/usr/share/privia")
    }
}
