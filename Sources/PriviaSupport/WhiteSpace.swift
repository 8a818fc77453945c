/// White-space tests that look at bytes first. Every chat turn trims and checks its prompt and
/// answer, and Foundation's `trimmingCharacters` copies the string through NSString to do it.
/// The set is the one `CharacterSet.whitespacesAndNewlines` holds: Unicode's White_Space.
extension Unicode.Scalar {
    public var isWhiteSpace: Bool {
        value < 0x80 ? value == 0x20 || (0x09...0x0D).contains(value) : properties.isWhitespace
    }
}

extension String {
    /// True when the text is empty or only white space.
    public var isBlank: Bool { unicodeScalars.allSatisfy(\.isWhiteSpace) }

    /// The text without leading and trailing white space; the same string when there is none.
    public var trimmingWhiteSpace: String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.isWhiteSpace }) else { return "" }
        let end = scalars.lastIndex(where: { !$0.isWhiteSpace })!
        if start == scalars.startIndex && end == scalars.index(before: scalars.endIndex) { return self }
        return String(scalars[start...end])
    }
}
