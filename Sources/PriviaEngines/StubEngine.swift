import Foundation

/// The default engine: works offline and says, word by word, that no model is connected.
public struct StubEngine: ChatEngine {
    public static let reply = "No language model is connected to this Privia server yet, so this is a placeholder answer. "
        + "An operator can point it at an OpenAI-compatible provider such as OpenRouter, Ollama, vLLM or llama.cpp."

    /// Delay before each token, for demos and tests of streaming and stopping.
    public var tokenDelay: Duration

    public init(tokenDelayMilliseconds: Int = 0) {
        tokenDelay = .milliseconds(tokenDelayMilliseconds)
    }

    /// The reply cut after each space, so the pieces join back to it exactly.
    static let pieces: [String] = {
        var pieces: [String] = []
        var current = ""
        for character in reply {
            current.append(character)
            if character == " " {
                pieces.append(current)
                current = ""
            }
        }
        if !current.isEmpty { pieces.append(current) }
        return pieces
    }()

    public func generate(_ context: EngineContext, into answer: StreamedAnswer) throws -> EngineResult {
        if tokenDelay > .zero { answer.willWait() }
        for piece in Self.pieces {
            guard tokenDelay <= .zero || answer.pause(for: tokenDelay), answer.token(piece) else { break }
        }
        let inputWords = context.history.reduce(0) { $0 + Self.words(in: $1.content) }
        return EngineResult(mode: .stub, model: "stub",
                            usage: TokenUsage(inputTokens: inputWords, outputTokens: Self.words(in: answer.text), estimated: true))
    }

    /// The stub's token count: runs of bytes between spaces.
    static func words(in text: String) -> Int {
        text.utf8.withContiguousStorageIfAvailable(wordCount) ?? wordCount(text.utf8)
    }

    /// A word starts at each byte that is not a space and follows a space (or the start).
    private static func wordCount(_ bytes: some Sequence<UInt8>) -> Int {
        var count = 0
        var previous: UInt8 = 0x20
        for byte in bytes {
            count += (byte != 0x20 && previous == 0x20) ? 1 : 0
            previous = byte
        }
        return count
    }
}
