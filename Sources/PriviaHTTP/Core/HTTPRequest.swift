import Foundation
import PriviaCore

/// An HTTP request as a plain value: what a transport hands to the router.
/// Tests build these directly; the FastCGI adapter builds them from CGI params.
public struct HTTPRequest: Sendable {
    public var method: String
    public var path: String
    public var query: [String: String]
    /// Header names are lower-case.
    public var headers: [String: String]
    public var body: [UInt8]
    /// nginx's `$request_id`, passed as its own FastCGI param.
    public var requestID: String
    public var remoteAddress: String

    public init(method: String, path: String, query: [String: String] = [:], headers: [String: String] = [:],
                body: [UInt8] = [], requestID: String = "", remoteAddress: String = "") {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.requestID = requestID
        self.remoteAddress = remoteAddress
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// The cookie `name`, if the request carries it.
    public func cookie(_ name: String) -> String? {
        headers["cookie"].flatMap { PresentedToken.cookie(name, in: $0) }
    }

    /// Parses a query string (`a=1&b=two`) with percent and plus decoding.
    public static func parseQuery(_ string: Substring) -> [String: String] {
        var result: [String: String] = [:]
        for pair in string.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = FormDecoding.decode(parts[0])
            result[key] = parts.count > 1 ? FormDecoding.decode(parts[1]) : ""
        }
        return result
    }
}

/// Percent-decoding for query strings and urlencoded forms.
enum FormDecoding {
    static func decode(_ text: Substring) -> String {
        if !text.utf8.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "%") }) { return String(text) }
        let plusless = text.replacingOccurrences(of: "+", with: " ")
        return plusless.removingPercentEncoding ?? plusless
    }
}
