import Foundation

/// Whether a process is listening on a unix socket path: a connect that succeeds. The pool and
/// the relay each check their socket before binding it, because binding over a live socket
/// would silently steal it from the running process.
public enum UnixSocketProbe {
    public static func isListening(_ path: String) throws -> Bool {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else {
            throw ConfigurationError("the socket path \(path) is longer than \(capacity - 1) bytes; use a shorter PRIVIA_DATA_DIR")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: path.utf8)
            buffer[path.utf8.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return connected == 0
    }
}
