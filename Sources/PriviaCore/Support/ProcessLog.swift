import Logging
import PriviaSupport

/// The pool's process events (start, stop, worker restarts, failures), as JSON lines on stderr.
/// The per-request line has its own writer (`RequestLog`), built for its rate.
public let processLog = Logger.privia("privia-fcgi")
