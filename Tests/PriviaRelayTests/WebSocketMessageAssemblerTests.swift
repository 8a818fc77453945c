import NIOCore
import NIOWebSocket
import Testing
@testable import PriviaRelay

/// A frame as a browser sends it: masked.
func clientFrame(_ opcode: WebSocketOpcode, _ bytes: [UInt8], fin: Bool = true) -> WebSocketFrame {
    let key = WebSocketMaskingKey.random()
    var data = ByteBuffer(bytes: bytes)
    data.webSocketMask(key)
    return WebSocketFrame(fin: fin, opcode: opcode, maskKey: key, data: data)
}

func clientText(_ text: String, fin: Bool = true) -> WebSocketFrame { clientFrame(.text, Array(text.utf8), fin: fin) }

@Suite struct WebSocketMessageAssemblerTests {
    @Test func wholeTextFrame() {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 100)
        #expect(assembler.receive(clientText("héllo")) == .text("héllo"))
    }

    @Test func fragmentsWithAPingBetween() {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 100)
        let emoji = Array("👋".utf8)
        #expect(assembler.receive(clientFrame(.text, Array("ab".utf8) + emoji[..<2], fin: false)) == .pending)
        #expect(assembler.receive(clientFrame(.ping, [1, 2])) == .ping(ByteBuffer(bytes: [1, 2])))
        #expect(assembler.receive(clientFrame(.continuation, Array(emoji[2...]), fin: false)) == .pending)
        #expect(assembler.receive(clientFrame(.continuation, Array("cd".utf8))) == .text("ab👋cd"))
    }

    @Test func protocolViolations() {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 100)
        let unmasked = WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: "x"))
        #expect(assembler.receive(unmasked) == .violation(.protocolError, "client frames must be masked"))
        #expect(assembler.receive(clientFrame(.continuation, [1])) == .violation(.protocolError, "continuation without a message"))
        _ = assembler.receive(clientText("a", fin: false))
        #expect(assembler.receive(clientText("b")) == .violation(.protocolError, "new message inside a fragmented one"))
        var reserved = clientText("x")
        reserved.rsv1 = true
        #expect(assembler.receive(reserved) == .violation(.protocolError, "reserved bits set"))
        #expect(assembler.receive(clientFrame(WebSocketOpcode(encodedWebSocketOpcode: 3)!, [])) == .violation(.protocolError, "unknown opcode"))
    }

    @Test func invalidUTF8IsRefusedWith1007() {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 100)
        #expect(assembler.receive(clientFrame(.text, [0xC3, 0x28])) == .violation(.dataInconsistentWithMessage, "text frame is not UTF-8"))
    }

    @Test func fragmentedMessageOverTheLimitIs1009() {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 10)
        #expect(assembler.receive(clientText("123456", fin: false)) == .pending)
        #expect(assembler.receive(clientFrame(.continuation, Array("789012".utf8), fin: false)) == .violation(.messageTooLarge, "message too large"))
    }

    @Test func binaryAndClose() {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 10)
        #expect(assembler.receive(clientFrame(.binary, [1])) == .binary(ByteBuffer(bytes: [1])))
        #expect(assembler.receive(clientFrame(.connectionClose, [])) == .close(code: nil))
        #expect(assembler.receive(clientFrame(.connectionClose, [0x03, 0xE8] + Array("bye".utf8))) == .close(code: 1000))
        #expect(assembler.receive(clientFrame(.connectionClose, [0x03])) == .violation(.protocolError, "bad close frame"))
        #expect(assembler.receive(clientFrame(.connectionClose, [0x03, 0xED])) == .violation(.protocolError, "bad close code"))
    }
}
