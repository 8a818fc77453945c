/// A request's path matched against patterns like `/api/conversations/{id}`, with `{name}`
/// capturing one segment. A trailing slash is ignored.
struct PathMatch {
    private let path: Substring

    init(_ path: String) {
        var trimmed = Substring(path)
        while trimmed.utf8.count > 1 && trimmed.utf8.last == UInt8(ascii: "/") { trimmed = trimmed.dropLast() }
        self.path = trimmed
    }

    /// Captured values in order, or nil if the pattern does not match.
    func match(_ pattern: String) -> [String]? {
        // Every request is tried against the patterns in turn: most have nothing to capture,
        // and for them a comparison is enough.
        guard pattern.utf8.contains(UInt8(ascii: "{")) else { return path == pattern ? [] : nil }
        let parts = pattern.split(separator: "/")
        let segments = path.split(separator: "/")
        guard parts.count == segments.count else { return nil }
        var captures: [String] = []
        for (part, segment) in zip(parts, segments) {
            if part.hasPrefix("{") {
                captures.append(String(segment))
            } else if part != segment {
                return nil
            }
        }
        return captures
    }
}
