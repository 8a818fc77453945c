extension ConversationStore {
    static let promptTitleLength = 40

    /// The title a first prompt gives an untitled conversation: its first 40 characters, then "...".
    /// Runs of white space (line breaks included) become one space: a title is one line.
    public static func title(fromPrompt prompt: String) -> String? {
        if let title = asciiTitle(fromPrompt: prompt) { return title.isEmpty ? nil : title }
        let text = prompt.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        guard !text.isEmpty else { return nil }
        return text.count > promptTitleLength ? String(text.prefix(promptTitleLength)) + "..." : text
    }

    /// The same title built from bytes when the prompt is ASCII (one byte, one character); nil otherwise.
    private static func asciiTitle(fromPrompt prompt: String) -> String? {
        var title: [UInt8] = []
        title.reserveCapacity(promptTitleLength)
        var spacePending = false
        var truncated = false
        func append(_ byte: UInt8) {
            if title.count == promptTitleLength { truncated = true } else { title.append(byte) }
        }
        for byte in prompt.utf8 {
            guard byte < 0x80 else { return nil }
            if byte == 0x20 || (0x09...0x0D).contains(byte) {
                spacePending = !title.isEmpty
                continue
            }
            if spacePending { append(0x20) }
            append(byte)
            spacePending = false
        }
        return String(decoding: title, as: UTF8.self) + (truncated ? "..." : "")
    }
}
