import PriviaCore
import PriviaSupport

extension HTTPRequest {
    /// The body as a JSON object; an empty body is `{}` when `allowEmpty`.
    public func jsonObject(allowEmpty: Bool = false) throws -> JSON {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) {
            if allowEmpty { return .object([]) }
            throw APIError.validation("A JSON body is required")
        }
        let value: JSON
        do {
            value = try JSONParser.parse(body)
        } catch {
            throw APIError.validation("The body is not valid JSON: \(error)")
        }
        guard case .object = value else { throw APIError.validation("The body must be a JSON object") }
        return value
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
