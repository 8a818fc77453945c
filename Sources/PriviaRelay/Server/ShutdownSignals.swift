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
        let kept = Locked(sources)  // the sources must outlive this call
        continuation.onTermination = { _ in kept.withLock { $0.forEach { $0.cancel() } } }
        return stream
    }
}
