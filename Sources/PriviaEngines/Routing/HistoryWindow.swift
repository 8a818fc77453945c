import PriviaSupport

/// Bounds the history sent to a provider, so a long conversation costs a bounded prompt.
///
/// The window is the system prompt (when configured) followed by the most recent messages whose
/// estimated tokens (`TokenEstimate`) fit `tokenBudget`, taken newest first and without gaps.
/// The last user message and anything after it are always kept, even alone over budget (the
/// provider then answers or refuses; cutting the question would be worse). A window never opens
/// on an assistant message: some providers require the first turn to be the user's.
public enum HistoryWindow {
    public static func bounded(_ history: [ChatMessage], systemPrompt: String?, tokenBudget: Int) -> [ChatMessage] {
        var head: [ChatMessage] = []
        if let prompt = systemPrompt, !prompt.allSatisfy(\.isWhitespace) {
            head.append(ChatMessage(role: .system, content: prompt))
        }
        guard !history.isEmpty else { return head }
        let lastUser = history.lastIndex { $0.role == .user } ?? history.index(before: history.endIndex)
        var used = TokenEstimate.tokens(in: head) + TokenEstimate.tokens(in: Array(history[lastUser...]))
        var start = lastUser
        while start > history.startIndex {
            let cost = TokenEstimate.tokens(in: history[start - 1])
            guard used + cost <= tokenBudget else { break }
            used += cost
            start -= 1
        }
        while start < lastUser, history[start].role == .assistant { start += 1 }
        return head + history[start...]
    }
}
