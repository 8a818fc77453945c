import PriviaSupport
import Testing
@testable import PriviaCore

/// The JSON the API writes for conversations and messages, field by field as Privia's frontend reads it.
@Suite struct ConversationJSONTests {
    @Test func largeCountsAreWrittenWhole() throws {
        let counts = [ConversationSummary(id: "a", title: "t", status: .active, createdAt: "2026-02-08 12:57:25",
                                          updatedAt: "2026-02-08 12:57:25", messageCount: 120)]
        #expect(try JSONParser.parse(counts.encoded()).arrayValue?.first?["message_count"] == 120)
    }

    @Test func conversationsWriteTheFieldsTheFrontendReadsInOrder() throws {
        let summary = ConversationSummary(id: "c-1", title: "Trip \"plans\"", status: .active,
                                          createdAt: "2026-02-08 12:57:25.194236", updatedAt: "2026-02-08T13:00:00+00:00",
                                          messageCount: 2)
        #expect(String(decoding: summary.encoded(), as: UTF8.self) == #"""
            {"id":"c-1","title":"Trip \"plans\"","status":"active","created_at":"2026-02-08T12:57:25.194236Z",\#
            "updated_at":"2026-02-08T13:00:00Z","message_count":2}
            """#)
        let messages = [
            Message(id: "m-1", role: .user, content: "Plan a trip\nto Oslo", timestamp: "2026-02-08 12:57:25", status: .complete),
            Message(id: "m-2", role: .assistant, content: "Sure.", timestamp: "2026-02-08 12:57:26", mode: .stub,
                    sources: ["a", "b"], model: "stub", status: .stopped),
        ]
        let detail = try JSONParser.parse(ConversationDetail(summary: summary, messages: messages).encoded())
        #expect(detail["message_count"] == 2 && detail["title"]?.stringValue == #"Trip "plans""#)
        let written = try #require(detail["messages"]?.arrayValue)
        #expect(written[0] == ["id": "m-1", "role": "user", "content": "Plan a trip\nto Oslo",
                               "timestamp": "2026-02-08T12:57:25Z", "status": "complete"])
        #expect(written[1]["sources"] == ["a", "b"] && written[1]["mode"] == "stub" && written[1]["status"] == "stopped")
        // An empty list is an empty array, and a written value nests inside a JSON tree as it is.
        #expect(String(decoding: [ConversationSummary]().encoded(), as: UTF8.self) == "[]")
        #expect(JSON.object([("conversation", summary.json)]) == ["conversation": try JSONParser.parse(summary.encoded())])
    }
}
