/// A provider-free token estimate, for usage a provider did not report and for bounding history.
///
/// One token per four characters, rounded up (OpenAI's rule of thumb for English), plus four
/// tokens per message for the role and framing a chat template adds. It over-counts code and
/// under-counts some scripts; usage built from it is marked `estimated`.
public enum TokenEstimate {
    public static let charactersPerToken = 4
    public static let tokensPerMessage = 4

    /// Characters are counted as Unicode scalars: the same for most text, and countable from
    /// the UTF-8 bytes without grapheme breaking.
    public static func tokens(in text: String) -> Int {
        // Over the string's own buffer the count vectorises; a bridged string is walked byte by byte.
        let scalars = text.utf8.withContiguousStorageIfAvailable(scalarCount) ?? scalarCount(text.utf8)
        return (scalars + charactersPerToken - 1) / charactersPerToken
    }

    private static func scalarCount(_ bytes: some Sequence<UInt8>) -> Int {
        bytes.reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
    }

    public static func tokens(in message: ChatMessage) -> Int {
        tokens(in: message.content) + tokensPerMessage
    }

    public static func tokens(in messages: [ChatMessage]) -> Int {
        messages.reduce(0) { $0 + tokens(in: $1) }
    }
}
