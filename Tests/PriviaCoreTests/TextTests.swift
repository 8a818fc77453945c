import PriviaSupport
import Testing
import PriviaCore
import PriviaEngines

/// Titles from first prompts and the white-space rules behind blank questions and trimmed answers.
@Suite struct TextTests {
    @Test func aTitleIsThePromptOnOneLineCutAtFortyCharacters() {
        #expect(ConversationStore.title(fromPrompt: "  Plan the\n\tlaunch   party  ") == "Plan the launch party")
        let forty = String(repeating: "a", count: 40)
        #expect(ConversationStore.title(fromPrompt: forty + "  \n") == forty)
        #expect(ConversationStore.title(fromPrompt: forty + "b") == forty + "...")
        let thirtyNine = String(repeating: "a", count: 39)
        #expect(ConversationStore.title(fromPrompt: thirtyNine + " next") == thirtyNine + " ...")
        #expect(ConversationStore.title(fromPrompt: " \n\t ") == nil)
        #expect(ConversationStore.title(fromPrompt: "") == nil)
    }

    @Test func nonASCIITitlesCountCharactersNotBytes() {
        #expect(ConversationStore.title(fromPrompt: "Ça  va\u{2003}bien") == "Ça va bien")
        let forty = String(repeating: "é", count: 40)
        #expect(ConversationStore.title(fromPrompt: forty) == forty)
        #expect(ConversationStore.title(fromPrompt: forty + "é") == forty + "...")
    }

    @Test func blankMeansOnlyUnicodeWhiteSpace() {
        #expect("".isBlank)
        #expect(" \n\t\r".isBlank)
        #expect("\u{00A0}\u{2003}\u{3000}".isBlank)
        #expect(!" x ".isBlank)
        #expect(!"\u{200B}".isBlank)  // a zero-width space is not white space
    }

    @Test func trimmingRemovesWhiteSpaceAtBothEndsOnly() {
        #expect("  a  b \n".trimmingWhiteSpace == "a  b")
        #expect("\u{3000}x\u{00A0}".trimmingWhiteSpace == "x")
        #expect("plain".trimmingWhiteSpace == "plain")
        #expect(" \n ".trimmingWhiteSpace == "")
        #expect("".trimmingWhiteSpace == "")
    }

    @Test func tokenEstimatesCountCharactersNotBytes() {
        #expect(TokenEstimate.tokens(in: "héllo wörld") == 3)  // 11 characters, 13 bytes
        #expect(TokenEstimate.tokens(in: "") == 0)
    }
}
