/// Form fields from an `application/x-www-form-urlencoded` or `multipart/form-data` body
/// (the latter is what a browser's `FormData` sends).
public enum FormBody {
    public static func parse(_ request: HTTPRequest) throws -> [String: String] {
        let contentType = request.header("content-type") ?? ""
        let lowered = contentType.lowercased()
        if lowered.hasPrefix("application/x-www-form-urlencoded") {
            return HTTPRequest.parseQuery(Substring(String(decoding: request.body, as: UTF8.self)))
        }
        if lowered.hasPrefix("multipart/form-data") {
            guard let boundary = parameter("boundary", of: contentType) else {
                throw APIError.validation("multipart body has no boundary")
            }
            return try multipart(request.body, boundary: boundary)
        }
        throw APIError(415, .validation, "Send the form as multipart/form-data or application/x-www-form-urlencoded")
    }

    static func parameter(_ name: String, of header: String) -> String? {
        for part in header.split(separator: ";").dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == name else { continue }
            var value = pair[1].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }

    /// RFC 7578: parts separated by `--boundary`, each with headers, a blank line, then content.
    static func multipart(_ body: [UInt8], boundary: String) throws -> [String: String] {
        let delimiter = Array("--\(boundary)".utf8)
        var fields: [String: String] = [:]
        var positions: [Int] = []
        var index = 0
        while let found = find(delimiter, in: body, from: index) {
            positions.append(found)
            index = found + delimiter.count
        }
        guard positions.count >= 2 else { throw APIError.validation("multipart body is malformed") }
        for (start, end) in zip(positions, positions.dropFirst()) {
            var partStart = start + delimiter.count
            if partStart + 1 < body.count, body[partStart] == 13, body[partStart + 1] == 10 { partStart += 2 }
            var partEnd = end
            if partEnd >= 2, body[partEnd - 2] == 13, body[partEnd - 1] == 10 { partEnd -= 2 }
            guard partStart <= partEnd else { continue }
            let part = Array(body[partStart..<partEnd])
            guard let split = find(Array("\r\n\r\n".utf8), in: part, from: 0) else { continue }
            let head = String(decoding: part[..<split], as: UTF8.self)
            let content = String(decoding: part[(split + 4)...], as: UTF8.self)
            for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-disposition:") {
                if let name = parameter("name", of: String(line)) { fields[name] = content }
            }
        }
        return fields
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        var index = start
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == needle[0] && haystack[index..<index + needle.count].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}
