import PriviaCore
import PriviaSupport

extension PriviaAPI {
    func signUp(_ request: HTTPRequest) throws -> HTTPResponse {
        let body = try request.jsonObject()
        let user = try accounts.signUp(email: try body.requiredString("email"), password: try body.requiredString("password"),
                                       fullName: try body.string("full_name"))
        return .json(201, ["id": .string(user.id), "email": .string(user.email), "full_name": .optional(user.fullName)])
    }

    /// Form fields `username` and `password` (the OAuth2 password flow Privia's frontend uses),
    /// multipart or urlencoded; a JSON body with `email` or `username` works too.
    func signIn(_ request: HTTPRequest) throws -> HTTPResponse {
        let fields: [String: String]
        if (request.header("content-type") ?? "").lowercased().hasPrefix("application/json") {
            let body = try request.jsonObject()
            fields = ["username": try body.string("username") ?? body.string("email") ?? "",
                      "password": try body.string("password") ?? ""]
        } else {
            fields = try FormBody.parse(request)
        }
        guard let email = fields["username"], !email.isEmpty else { throw APIError.validation("username is required") }
        guard let password = fields["password"], !password.isEmpty else { throw APIError.validation("password is required") }
        do {
            let (token, user) = try accounts.signIn(email: email, password: password)
            var response = HTTPResponse.json(200, ["access_token": .string(token), "token_type": "bearer", "user": user.json])
            response.userID = user.id
            return response
        } catch DomainError.invalid(let message) {
            throw APIError(400, .auth, message)
        }
    }

    func me(_ request: HTTPRequest) throws -> HTTPResponse {
        let caller = try caller(request)
        return HTTPResponse.json(200, caller.user.json).by(caller)
    }

    func signOut(_ request: HTTPRequest) throws -> HTTPResponse {
        let caller = try caller(request)
        try accounts.signOut(caller)
        return HTTPResponse.noContent().by(caller)
    }

    /// Privia's OAuth exchange, made safe: off (404) unless PRIVIA_OAUTH_EXCHANGE_SECRET is set,
    /// and then only for a caller presenting that secret, as a server-side frontend does.
    func exchangeOAuth(_ request: HTTPRequest) throws -> HTTPResponse {
        guard let secret = settings.oauthExchangeSecret else { throw APIError.notFound("Not Found") }
        let presented = request.header("x-privia-exchange-secret") ?? Self.token(request) ?? ""
        guard Crypto.constantTimeEquals(Array(presented.utf8), Array(secret.utf8)) else {
            throw APIError.unauthorized("The OAuth exchange secret is missing or wrong")
        }
        let body = try request.jsonObject()
        let (token, user) = try accounts.exchangeOAuth(
            provider: try body.requiredString("provider"), providerAccountID: try body.requiredString("provider_account_id"),
            email: try body.requiredString("email"), fullName: try body.string("full_name"), avatarURL: try body.string("avatar_url"))
        var response = HTTPResponse.json(200, ["access_token": .string(token), "token_type": "bearer", "user": user.json])
        response.userID = user.id
        return response
    }
}
