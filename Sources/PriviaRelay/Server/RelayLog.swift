import Logging
import PriviaSupport

/// The relay's events (sockets, turns, polling), as JSON lines on stderr; `PRIVIA_LOG_LEVEL`
/// sets the level.
public let relayLog = Logger.privia("privia-relay")
