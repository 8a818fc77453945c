import Dispatch
import Foundation

/// SIGTERM and SIGINT as an async sequence, so `main` can await a graceful stop.
public enum ShutdownSignals {
    /// Switches off the signals' default actions (and SIGPIPE's: a closed connection must not
    /// kill the process) and yields each signal as it arrives.
    public static func watch() -> AsyncStream<Int32> {
        signal(SIGPIPE, SIG_IGN)
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        let sources = [SIGTERM, SIGINT].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { continuation.yield(signalNumber) }
            source.resume()
            return source
        }
        // The sources must outlive this call; only the termination handler touches them again.
        nonisolated(unsafe) let kept = sources
        continuation.onTermination = { _ in kept.forEach { $0.cancel() } }
        return stream
    }
}
