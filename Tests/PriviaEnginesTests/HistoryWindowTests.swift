import Testing
@testable import PriviaEngines

@Suite struct HistoryWindowTests {
    /// 40 characters: 10 tokens of text + 4 of framing = 14 estimated tokens per message.
    static func message(_ role: ChatMessage.Role, _ index: Int) -> ChatMessage {
        ChatMessage(role: role, content: String(repeating: "\(index % 10)", count: 40))
    }
    let history = (0..<10).map { message($0 % 2 == 0 ? .user : .assistant, $0) }

    @Test func theEstimateIsACharacterCount() {
        #expect(TokenEstimate.tokens(in: "") == 0)
        #expect(TokenEstimate.tokens(in: "abc") == 1)
        #expect(TokenEstimate.tokens(in: "abcd") == 1)
        #expect(TokenEstimate.tokens(in: "abcde") == 2)
        #expect(TokenEstimate.tokens(in: Self.message(.user, 1)) == 14)
    }

    @Test func keepsTheNewestMessagesThatFit() {
        let window = HistoryWindow.bounded(history, systemPrompt: nil, tokenBudget: 14 * 4)
        // The last user message (8) and its reply are kept; 7 and 6 fit too; 5 would not.
        #expect(window == Array(history[6...]))
    }

    @Test func neverOpensOnAnAssistantMessage() {
        let window = HistoryWindow.bounded(history, systemPrompt: nil, tokenBudget: 14 * 3)
        // 7...9 fit; 7 is the assistant's, so the window starts at 8.
        #expect(window == Array(history[8...]))
    }

    @Test func theSystemPromptComesFirstAndCounts() {
        let prompt = String(repeating: "s", count: 40)  // 14 tokens with framing
        let window = HistoryWindow.bounded(history, systemPrompt: prompt, tokenBudget: 14 * 4)
        #expect(window.first == ChatMessage(role: .system, content: prompt))
        #expect(Array(window.dropFirst()) == Array(history[8...]))
    }

    @Test func theLastUserMessageIsAlwaysKept() {
        let long = ChatMessage(role: .user, content: String(repeating: "x", count: 10_000))
        let window = HistoryWindow.bounded(history + [long], systemPrompt: "Be brief.", tokenBudget: 10)
        #expect(window == [ChatMessage(role: .system, content: "Be brief."), long])
    }

    @Test func everythingFitsUnderALargeBudget() {
        #expect(HistoryWindow.bounded(history, systemPrompt: nil, tokenBudget: 6000) == history)
        #expect(HistoryWindow.bounded([], systemPrompt: " ", tokenBudget: 10).isEmpty)
    }
}
