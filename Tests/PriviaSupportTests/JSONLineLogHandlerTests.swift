import Logging
import Testing
@testable import PriviaSupport

@Suite struct JSONLineLogHandlerTests {
    @Test func numbersAndFlagsStayJSONNumbersAndBooleans() {
        let metadata: Logger.Metadata = ["served": .stringConvertible(12), "ratio": .stringConvertible(0.5),
                                         "draining": .stringConvertible(true), "path": "/run/x.sock",
                                         "ids": ["a", "b"]]
        let json = JSON.object(metadata.keys.sorted().map { ($0, JSONLineLogHandler.json(metadata[$0]!)) })
        #expect(json.text == #"{"draining":true,"ids":["a","b"],"path":"/run/x.sock","ratio":0.5,"served":12}"#)
    }

    @Test func oneLevelForTheWholeProcess() {
        let before = JSONLineLogHandler.minimumLevel
        defer { JSONLineLogHandler.minimumLevel = before }
        let logger = Logger.privia("test")
        JSONLineLogHandler.minimumLevel = .error
        #expect(logger.logLevel == .error)
        JSONLineLogHandler.minimumLevel = .debug
        #expect(logger.logLevel == .debug)
    }
}
