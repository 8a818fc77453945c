import Foundation
import Logging
import PriviaChat
import PriviaCore
import PriviaEngines
import PriviaSupport

extension PriviaAPI {
    func turnRequest(_ request: HTTPRequest) throws -> TurnRequest {
        let body = try request.jsonObject()
        let actionName = try body.string("action") ?? "ask"
        guard let action = TurnAction(rawValue: actionName) else {
            throw APIError.validation("action must be ask, regenerate or edit, not '\(actionName)'")
        }
        let key = try request.header("idempotency-key") ?? body.string("idempotency_key")
        if let key, key.isEmpty || key.utf8.count > 255 {
            throw APIError.validation("An idempotency key must be 1 to 255 characters")
        }
        let turn = TurnRequest(question: try body.string("question") ?? "", conversationID: try body.string("conversation_id"),
                               model: try body.string("model"), temperature: try body.double("temperature"),
                               maxTokens: try body.int("max_tokens"), action: action, idempotencyKey: key)
        // Checked before anything is persisted: an unknown model or an out-of-range setting is a 400.
        try catalog.validate(model: turn.model, temperature: turn.temperature, maxTokens: turn.maxTokens)
        return turn
    }

    /// The caller's usage by UTC day and model (`?days=`, default 30), with the budget in force.
    func usageReport(_ request: HTTPRequest) throws -> HTTPResponse {
        let caller = try caller(request)
        let days = try request.query["days"].map { raw -> Int in
            guard let value = Int(raw), (1...366).contains(value) else { throw APIError.validation("days must be 1 to 366") }
            return value
        } ?? 30
        return HTTPResponse.json(200, try usage.report(userID: caller.user.id, days: days)).by(caller)
    }

    /// The models this deployment offers, with their prices per million tokens.
    func models(_ request: HTTPRequest) throws -> HTTPResponse {
        let caller = try caller(request)
        return HTTPResponse.json(200, .array(catalog.offeredModels.map { model in
            ["id": .string(model.id), "display_name": .string(model.displayName),
             "input_price_per_million": .double(model.inputPricePerMillion),
             "output_price_per_million": .double(model.outputPricePerMillion),
             "max_output_tokens": model.maxOutputTokens.map(JSON.int) ?? .null, "default": .bool(model.isDefault)]
        })).by(caller)
    }

    /// REST: the whole answer in one response.
    func query(_ request: HTTPRequest) throws -> HTTPResponse {
        let caller = try caller(request)
        let turn = try chat.prepare(userID: caller.user.id, turnRequest(request))
        let outcome = try chat.generate(turn, sink: CollectingSink())
        let answer = outcome.answer
        if answer.status == .failed, let error = outcome.error {
            return APIError(502, APIError.Code(rawValue: error.code.rawValue) ?? .provider, error.message).response.by(caller)
        }
        return HTTPResponse.json(200, [
            "answer": .string(answer.content), "mode": .string(answer.mode.rawValue), "sources": .array(answer.sources.map(JSON.string)),
            "conversation_id": .string(answer.conversationID), "message_id": .string(answer.messageID),
            "model": .string(answer.model), "status": .string(answer.status.rawValue),
        ]).by(caller)
    }

    /// SSE: each token an unnamed `data:` event, then `event: done` or `event: error`.
    /// Errors found before the first byte (auth, validation, a foreign conversation) are
    /// ordinary JSON responses; the prompt is committed before the stream starts.
    func stream(_ request: HTTPRequest) throws -> HTTPResponse {
        let caller = try caller(request)
        let turn = try chat.prepare(userID: caller.user.id, turnRequest(request))
        let chat = self.chat
        let heartbeat = settings.heartbeatSeconds
        var response = HTTPResponse(status: 200, headers: SSE.headers, body: .stream { stream in
            let sink = SSESink(stream, heartbeatSeconds: heartbeat)
            do {
                let outcome = try chat.generate(turn, sink: sink)
                let answer = outcome.answer
                switch answer.status {
                // After a stop, `done` reaches a client only if it is still there. An interrupted
                // answer comes here only as the replay of one, with the text saved before its
                // process died.
                case .complete, .stopped, .interrupted:
                    _ = stream.send(TurnStreamEvent.done.sse(answer.doneJSON.text))
                case .failed:
                    let error = outcome.error ?? EngineError(.provider, "The model failed")
                    _ = stream.send(TurnStreamEvent.error.sse(TurnStreamEvent.errorJSON(
                        message: error.message, code: error.code.rawValue, conversationID: answer.conversationID,
                        messageID: answer.messageID).text))
                }
            } catch {
                // The status went out with the first byte, so a failure now (a full disk that kept
                // the answer from being stored, say) is an `error` event with its stable code.
                processLog.error("stream failed", metadata: ["request_id": .string(request.requestID), "error": .string("\(error)")])
                let apiError = APIError.from(error)
                _ = stream.send(TurnStreamEvent.error.sse(TurnStreamEvent.errorJSON(
                    message: apiError.message, code: apiError.code.rawValue, conversationID: turn.conversationID).text))
            }
        })
        response.userID = caller.user.id
        return response
    }
}

/// Collects nothing and never stops: the REST turn returns the engine's final content.
final class CollectingSink: GenerationSink {
    func token(_ text: String) -> Bool { true }
    func keepGoing() -> Bool { true }
}

/// Writes tokens as SSE events and sends a heartbeat comment when the engine has been silent
/// for `heartbeatSeconds`. A failed write, or the client's connection closing, stops the turn.
final class SSESink: GenerationSink {
    private let stream: ResponseStream
    private let heartbeat: Duration
    private var lastWrite = ContinuousClock.now

    init(_ stream: ResponseStream, heartbeatSeconds: Double) {
        self.stream = stream
        heartbeat = .milliseconds(Int(heartbeatSeconds * 1000))
    }

    func token(_ text: String) -> Bool {
        lastWrite = .now
        return stream.send(TurnStreamEvent.token.sse(text))
    }

    func keepGoing() -> Bool {
        !stream.clientGone && heartbeatIfDue()
    }

    /// One wait on the connection per pause, cut short by the client leaving: a held stream
    /// costs its thread one wake-up per token, not a sleep and two checks.
    func pause(for duration: Duration) -> Bool {
        let deadline = ContinuousClock.now + duration
        while true {
            guard heartbeatIfDue() else { return false }
            let now = ContinuousClock.now
            if now >= deadline { return true }
            if stream.clientGone(within: min(deadline, lastWrite + heartbeat) - now) { return false }
        }
    }

    private func heartbeatIfDue() -> Bool {
        guard ContinuousClock.now - lastWrite >= heartbeat else { return true }
        lastWrite = .now
        return stream.send(SSE.heartbeat)
    }
}
