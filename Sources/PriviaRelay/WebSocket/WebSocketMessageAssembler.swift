import NIOCore
import NIOWebSocket

/// Turns the raw frames NIO's decoder yields into whole messages (RFC 6455 section 5).
///
/// NIO's decoder does not unmask, join fragments or check the rules a server must enforce;
/// this does: client frames are masked, no reserved bits (no extension was negotiated),
/// known opcodes only, continuations only inside a fragmented message, text is UTF-8, and a
/// message is at most `maxMessageSize` bytes. Control frames may arrive between fragments.
public struct WebSocketMessageAssembler {
    public enum Output: Equatable {
        case text(String)
        case binary(ByteBuffer)
        case ping(ByteBuffer)
        case pong
        /// The client's close frame; nil when it carried no code.
        case close(code: UInt16?)
        /// The client broke the protocol: close with this code.
        case violation(WebSocketErrorCode, String)
        /// A fragment was buffered; nothing to do yet.
        case pending
    }

    public let maxMessageSize: Int
    private var fragments: ByteBuffer?
    private var fragmentedOpcode: WebSocketOpcode = .text

    public init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    public mutating func receive(_ frame: WebSocketFrame) -> Output {
        guard frame.maskKey != nil else { return .violation(.protocolError, "client frames must be masked") }
        guard frame.reservedBits.isEmpty else { return .violation(.protocolError, "reserved bits set") }
        switch frame.opcode {
        case .ping:
            return .ping(frame.unmaskedData)
        case .pong:
            return .pong
        case .connectionClose:
            return close(frame.unmaskedData)
        case .text, .binary:
            guard fragments == nil else { return .violation(.protocolError, "new message inside a fragmented one") }
            if frame.fin { return message(frame.opcode, frame.unmaskedData) }
            fragmentedOpcode = frame.opcode
            fragments = frame.unmaskedData
            return checkSize()
        case .continuation:
            guard var buffer = fragments else { return .violation(.protocolError, "continuation without a message") }
            var data = frame.unmaskedData
            buffer.writeBuffer(&data)
            fragments = buffer
            if case .violation(let code, let why) = checkSize() { return .violation(code, why) }
            guard frame.fin else { return .pending }
            fragments = nil
            return message(fragmentedOpcode, buffer)
        default:
            return .violation(.protocolError, "unknown opcode")
        }
    }

    private mutating func checkSize() -> Output {
        guard let fragments, fragments.readableBytes > maxMessageSize else { return .pending }
        self.fragments = nil
        return .violation(.messageTooLarge, "message too large")
    }

    private func message(_ opcode: WebSocketOpcode, _ data: ByteBuffer) -> Output {
        guard data.readableBytes <= maxMessageSize else { return .violation(.messageTooLarge, "message too large") }
        if opcode == .binary { return .binary(data) }
        guard let text = String(validating: data.readableBytesView, as: UTF8.self) else {
            return .violation(.dataInconsistentWithMessage, "text frame is not UTF-8")
        }
        return .text(text)
    }

    /// A close frame body is empty, or a 2-byte code and a UTF-8 reason (section 5.5.1).
    private func close(_ data: ByteBuffer) -> Output {
        var data = data
        if data.readableBytes == 0 { return .close(code: nil) }
        guard let code = data.readInteger(as: UInt16.self) else { return .violation(.protocolError, "bad close frame") }
        guard String(validating: data.readableBytesView, as: UTF8.self) != nil else {
            return .violation(.dataInconsistentWithMessage, "close reason is not UTF-8")
        }
        guard Self.isValidCloseCode(code) else { return .violation(.protocolError, "bad close code") }
        return .close(code: code)
    }

    static func isValidCloseCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1011, 3000...4999: return true
        default: return false
        }
    }
}

extension WebSocketErrorCode {
    /// The numeric close code.
    var number: UInt16 {
        var buffer = ByteBuffer()
        buffer.write(webSocketErrorCode: self)
        return buffer.readInteger(as: UInt16.self)!
    }
}
