/// A request's path split into segments, matched against patterns like
/// `/api/conversations/{id}` with `{name}` capturing one segment.
struct PathMatch {
    private let segments: [Substring]

    init(_ path: String) {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        segments = trimmed.split(separator: "/")
    }

    /// Captured values in order, or nil if the pattern does not match.
    func match(_ pattern: String) -> [String]? {
        let parts = pattern.split(separator: "/")
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
