import PriviaCore
import PriviaSupport

extension HTTPRequest {
    /// The body as a JSON object; an empty body is `{}` when `allowEmpty`.
    ///
    /// Every route reads its body here, so this is where text that cannot be stored whole is
    /// refused with 400: bytes that are not UTF-8 and lone surrogate escapes (which the parser
    /// refuses), and U+0000 in any string, member names included, which C strings and many
    /// tools take as the end of the text.
    public func jsonObject(allowEmpty: Bool = false) throws -> JSON {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) {
            if allowEmpty { return .object([]) }
            throw APIError.validation("A JSON body is required")
        }
        let value: JSON
        do {
            value = try JSONParser.parse(body)
        } catch let failure as JSONParser.Failure where failure.isInvalidText {
            throw APIError.badRequest("The body is not valid Unicode text: \(failure.reason) at byte \(failure.offset)")
        } catch {
            throw APIError.validation("The body is not valid JSON: \(error)")
        }
        guard case .object = value else { throw APIError.validation("The body must be a JSON object") }
        if let field = Self.fieldHoldingNUL(value, in: nil) {
            throw APIError.badRequest("\(field) must not contain the NUL character (\\u0000)")
        }
        return value
    }

    /// The top-level member whose value holds U+0000 anywhere, or "A member name"; nil if none.
    private static func fieldHoldingNUL(_ value: JSON, in field: String?) -> String? {
        switch value {
        case .string(let text):
            return text.utf8.contains(0) ? field ?? "The body" : nil
        case .array(let items):
            return items.lazy.compactMap { fieldHoldingNUL($0, in: field) }.first
        case .object(let members):
            for (name, member) in members {
                if name.utf8.contains(0) { return "A member name" }
                if let found = fieldHoldingNUL(member, in: field ?? name) { return found }
            }
            return nil
        default:
            return nil
        }
    }
}

extension JSON {
    /// A string member: nil when absent or null, a validation error when of another type.
    public func string(_ key: String) throws -> String? {
        guard let value = self[key], !value.isNull else { return nil }
        guard let string = value.stringValue else { throw APIError.validation("\(key) must be a string") }
        return string
    }

    public func requiredString(_ key: String) throws -> String {
        guard let value = try string(key) else { throw APIError.validation("\(key) is required") }
        return value
    }

    public func double(_ key: String) throws -> Double? {
        guard let value = self[key], !value.isNull else { return nil }
        guard let number = value.doubleValue else { throw APIError.validation("\(key) must be a number") }
        return number
    }

    public func int(_ key: String) throws -> Int? {
        guard let value = self[key], !value.isNull else { return nil }
        guard let number = value.intValue else { throw APIError.validation("\(key) must be a whole number") }
        return number
    }
}
