import NIOCore
import PriviaCore
import PriviaSupport
import Synchronization

/// Messages the server sends into a socket's pipeline from outside its event loop.
public enum RelayNotice: Sendable {
    /// The server is shutting down: close with 1001.
    case goingAway
    /// Workspace event frames for this socket's user, in order: the text of each, encoded once
    /// for all of the user's sockets, and written to each socket together.
    case workspaceEvents([ByteBuffer])

    /// `workspaceEvents` from the frames' JSON.
    public static func workspaceEvents(encoding frames: [JSON]) -> RelayNotice {
        .workspaceEvents(frames.map { ByteBuffer(bytes: $0.encoded()) })
    }
}

/// Every open chat socket, by user, so events reach all tabs of a user and shutdown reaches all.
public final class SocketRegistry: Sendable {
    private struct State {
        var all: [ObjectIdentifier: any Channel] = [:]
        var byUser: [String: [ObjectIdentifier: any Channel]] = [:]
        var userOf: [ObjectIdentifier: String] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public func add(_ channel: any Channel, userID: String?) {
        let key = ObjectIdentifier(channel)
        state.withLock { state in
            state.all[key] = channel
            if let userID {
                state.byUser[userID, default: [:]][key] = channel
                state.userOf[key] = userID
            }
        }
    }

    public func remove(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        state.withLock { state in
            state.all[key] = nil
            if let userID = state.userOf.removeValue(forKey: key) {
                state.byUser[userID]?[key] = nil
                if state.byUser[userID]?.isEmpty == true { state.byUser[userID] = nil }
            }
        }
    }

    public var count: Int { state.withLock { $0.all.count } }

    public func channels(ofUser userID: String) -> [any Channel] {
        state.withLock { Array(($0.byUser[userID] ?? [:]).values) }
    }

    public var hasUsers: Bool { state.withLock { !$0.byUser.isEmpty } }

    /// Sends `notice` to every socket (or every socket of `userID`).
    public func broadcast(_ notice: RelayNotice, toUser userID: String? = nil) {
        let targets = userID.map { self.channels(ofUser: $0) } ?? state.withLock { Array($0.all.values) }
        for channel in targets {
            channel.pipeline.fireUserInboundEventTriggered(notice)
        }
    }
}
