"""Load drivers for what wrk cannot drive: SSE streams held open, WebSockets, raw FastCGI.

Standard library only (asyncio + ssl), except `streams` and `token-latency`, whose turns run
in bench/turn_load.c (built with cc on first use): at 2,000 streams an asyncio client cannot
keep up, and at ten its event loop now and then runs late by milliseconds. Each driver is a
subcommand that reads its settings as JSON on stdin and prints one JSON result on stdout, so
the runner (run.py) samples process memory from another process than the one whose latency
it measures:

    echo '{"port": 8443, "cafile": ..., "tokens": [...], ...}' | python3 bench/drivers.py streams

Every driver is bounded: a count of connections and a deadline in seconds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import ssl
import struct
import subprocess
import sys
import time

now = time.perf_counter

HOST = "127.0.0.1"  # loopback only, always


# ---------------------------------------------------------------------------
# TLS and server-sent events
# ---------------------------------------------------------------------------


def tls_context(cafile: str) -> ssl.SSLContext:
    """Trusts exactly the stack's self-signed certificate (made for 127.0.0.1), like a browser
    that was told to; HTTP/1.1 only, one request per connection as wrk does."""
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols(["http/1.1"])
    return context


class SSEEvents:
    """Splits a decoded SSE body into events and notes when each token event arrived."""

    def __init__(self) -> None:
        self.buffer = b""
        self.token_times: list[float] = []
        self.final: str | None = None  # "done" or "error"

    def feed(self, data: bytes, at: float) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\n\n")
            if end < 0:
                return
            block, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            name, has_data = b"", False
            for line in block.split(b"\n"):
                if line.startswith(b"event:"):
                    name = line[6:].strip()
                elif line.startswith(b"data:"):
                    has_data = True
            if not has_data:
                continue  # a heartbeat comment
            if name in (b"", b"message"):
                self.token_times.append(at)
            elif name in (b"done", b"error"):
                self.final = name.decode()


# ---------------------------------------------------------------------------
# FastCGI records, as the tap in front of the pool's socket reads them
# ---------------------------------------------------------------------------

FCGI_STDOUT = 6


def fcgi_records(buffer: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The complete FastCGI records at the front of `buffer`, as (type, content), and the rest."""
    records = []
    while len(buffer) >= 8:
        _, kind, _, length, padding = struct.unpack(">BBHHBx", buffer[:8])
        if len(buffer) < 8 + length + padding:
            break
        records.append((kind, buffer[8 : 8 + length]))
        buffer = buffer[8 + length + padding :]
    return records, buffer


# ---------------------------------------------------------------------------
# WebSocket (RFC 6455), client side
# ---------------------------------------------------------------------------


class WebSocket:
    """A client socket to `/api/ws/chat` through nginx: upgrade, masked text frames out,
    frames in (pings answered at once)."""

    def __init__(self, port: int, context: ssl.SSLContext, token: str) -> None:
        self.port, self.context, self.token = port, context, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.closed = False

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port, ssl=self.context,
                                                                 server_hostname=HOST, limit=1 << 20)
        key = base64.b64encode(os.urandom(16)).decode()
        origin = f"https://localhost:{self.port}"
        # A browser sends the cookie and its Origin; it cannot set Authorization on a WebSocket.
        self.writer.write((
            f"GET /api/ws/chat HTTP/1.1\r\nHost: localhost:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {origin}\r\nCookie: auth-token={self.token}\r\n\r\n"
        ).encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            raise ConnectionError(f"upgrade answered {status}")

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = struct.pack(">BB", 0x80 | opcode, 0x80 | length)
        elif length < 65536:
            header = struct.pack(">BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack(">BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if length < 512 else _mask(payload, mask)
        self.writer.write(header + mask + masked)

    def send_text(self, text: str) -> None:
        self.send(0x1, text.encode())

    async def receive(self) -> tuple[int, bytes]:
        """The next data message (opcode 1 or 2) or close (8); answers pings itself."""
        assert self.reader
        message, message_opcode = b"", 0
        while True:
            first, second = await self.reader.readexactly(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack(">H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack(">Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(length) if length else b""
            if opcode == 0x9:
                self.send(0xA, payload)
                continue
            if opcode == 0xA:
                return opcode, payload
            if opcode == 0x8:
                self.closed = True
                return opcode, payload
            if opcode != 0:
                message_opcode = opcode
            message += payload
            if first & 0x80:
                return message_opcode, message

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def _mask(payload: bytes, mask: bytes) -> bytes:
    key = int.from_bytes((mask * (len(payload) // 4 + 1))[: len(payload)], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(len(payload), "big")


# ---------------------------------------------------------------------------
# Drivers
# ---------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


async def bounded(limit: int, coroutines) -> list:
    """Runs coroutines with at most `limit` in flight (TLS handshakes cost CPU on both ends)."""
    gate = asyncio.Semaphore(limit)

    async def one(coroutine):
        async with gate:
            return await coroutine

    return await asyncio.gather(*(one(c) for c in coroutines), return_exceptions=True)


def native_tool(name: str) -> str:
    """Builds bench/NAME.c into .build/bench/NAME when the binary is missing or older than its
    source, and returns the binary's path."""
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.c")
    binary = os.path.join(os.path.dirname(os.path.dirname(source)), ".build", "bench", name)
    if not os.path.exists(binary) or os.path.getmtime(binary) < os.path.getmtime(source):
        os.makedirs(os.path.dirname(binary), exist_ok=True)
        subprocess.run(["cc", "-O2", "-Wall", "-o", binary, source, "-lssl", "-lcrypto"], check=True)
    return binary


async def turn_load(s: dict, turns: list[tuple[str, str, str]], ramp_ms: float, handshakes: int) -> dict:
    """Runs bench/turn_load.c over `turns` ("sse" or "ws", bearer token, conversation id): all
    connections opened first, then the questions sent evenly over `ramp_ms`. Returns its JSON,
    each stream as [sent, head, first token, last token, tokens, final, failure, token times]."""
    lines = "".join(f"{kind} {token} {conversation}\n" for kind, token, conversation in turns)
    process = await asyncio.create_subprocess_exec(
        native_tool("turn_load"), str(s["port"]), s["cafile"], str(ramp_ms), str(s["deadline"]), str(handshakes),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate(lines.encode())
    if process.returncode != 0:
        raise RuntimeError(f"turn_load exited with {process.returncode}")
    return json.loads(out)


def turn_failure(stream: list) -> str | None:
    _, _, _, _, _, final, failure, _ = stream
    return failure or (None if final == "done" else f"stream ended with {final or 'no final event'}")


async def streams_held(s: dict) -> dict:
    """Scenario 6: N streams, each on a TLS connection opened beforehand; the requests go out
    evenly spread over `ramp_seconds` (0: all at once), shorter than a stream lasts, so all N
    are held at the same time at the end of the ramp. Each must end with `event: done`. Time
    to first token is from writing the request to reading the first token event."""
    turns = [("sse", s["tokens"][i % len(s["tokens"])], s["conversations"][i]) for i in range(s["n"])]
    result = await turn_load(s, turns, s.get("ramp_seconds", 0) * 1000, s.get("handshakes", 128))
    streams = result["streams"]
    errors = [failure for failure in map(turn_failure, streams) if failure]
    ttfb = [(head - sent) * 1000 for sent, head, *_ in streams if head]
    ttft = [(first - sent) * 1000 for sent, _, first, _, tokens, *_ in streams if tokens]
    durations = [(last - sent) * 1000 for sent, _, _, last, tokens, *_ in streams if tokens]
    # Streams held at once: the most whose first token had come and whose last had not.
    edges = sorted([(t[2], 1) for t in streams if t[4]] + [(t[3], -1) for t in streams if t[4]])
    held = peak = 0
    for _, step in edges:
        held += step
        peak = max(peak, held)
    wall = result["send_to_end_seconds"]
    return {
        "n": s["n"], "completed": len(streams) - len(errors), "errors": len(errors), "error_samples": errors[:5],
        "ttft_p50_ms": percentile(ttft, 50), "ttft_p99_ms": percentile(ttft, 99), "ttft_max_ms": max(ttft, default=None),
        "head_p50_ms": percentile(ttfb, 50), "head_p99_ms": percentile(ttfb, 99),
        "stream_p50_ms": percentile(durations, 50), "peak_concurrent": peak,
        "connect_seconds": round(result["connect_seconds"], 3), "send_to_end_seconds": round(wall, 3),
        "client_cpu_share": round(result["cpu_seconds"] / wall, 3) if wall else None,
    }


async def token_latency(s: dict) -> dict:
    """Scenario 8, the client side: rounds of turns over SSE and over WebSockets, a few at a
    time (light load: this is latency, not queueing), each token's arrival time recorded with
    the turn's conversation id. `fastcgi_tap` records when the same tokens left the pool;
    run.py pairs them. A round's turns start one after the other across one token interval,
    so no two write their prompt at the same moment."""
    conversations = iter(s["conversations"])
    streams = {"sse": [], "websocket": []}
    errors = {"sse": 0, "websocket": 0}
    for _ in range(s["rounds"]):
        turns = [(kind, s["tokens"][0], next(conversations)) for _ in range(s["concurrency"]) for kind in ("sse", "ws")]
        result = await turn_load(s, turns, s["delay_ms"], len(turns))
        for (kind, _, conversation), stream in zip(turns, result["streams"]):
            path = "sse" if kind == "sse" else "websocket"
            if turn_failure(stream):
                errors[path] += 1
            else:
                streams[path].append({"conversation_id": conversation, "sent_at": stream[0], "token_times": stream[7]})
    return {"errors": sum(errors.values()), "errors_by_path": errors, "streams": streams}


async def fastcgi_tap(s: dict) -> dict:
    """Scenario 8, the pool side: a pass-through on the pool's socket path that notes when
    each token of each `POST /api/stream` left the pool (as it reads the pool's bytes,
    before passing them on). Runs until SIGTERM, then prints conversation id -> token times.

    run.py moves the pool's listening socket aside and puts this in its place for the
    scenario, so nginx and the relay reach the pool through it; what it adds (a read and a
    write, tens of microseconds) counts against nginx, so the figure errs high."""
    import re
    import signal
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    seen: dict[str, list[float]] = {}
    pattern = re.compile(rb'"conversation_id"\s*:\s*"([0-9a-f-]{36})"')

    async def serve(client_reader, client_writer) -> None:
        upstream_reader, upstream_writer = await asyncio.open_unix_connection(s["upstream"], limit=1 << 20)
        request = bytearray()
        events = SSEEvents()

        async def inbound() -> None:
            while data := await client_reader.read(65536):
                request.extend(data)
                upstream_writer.write(data)
            upstream_writer.write_eof() if upstream_writer.can_write_eof() else None

        async def outbound() -> None:
            buffer = b""
            head_done = False
            while data := await upstream_reader.read(65536):
                at = now()
                records, buffer = fcgi_records(buffer + data)
                for kind, content in records:
                    if kind != FCGI_STDOUT:
                        continue
                    if not head_done:
                        if b"\r\n\r\n" not in content:
                            continue
                        head_done, content = True, content.split(b"\r\n\r\n", 1)[1]
                    events.feed(content, at)
                client_writer.write(data)
            client_writer.close()

        try:
            await asyncio.gather(inbound(), outbound())
        except (ConnectionError, OSError):
            pass
        finally:
            upstream_writer.close()
            client_writer.close()
            match = pattern.search(bytes(request))
            if match and events.token_times:
                seen[match.group(1).decode()] = events.token_times

    server = await asyncio.start_unix_server(serve, s["listen"], limit=1 << 20)
    os.chmod(s["listen"], 0o666)  # inside run/, which only nginx's group and root reach
    await stop.wait()
    server.close()
    return {"streams": seen}


async def sockets_held(s: dict) -> dict:
    """Scenario 7a: N authenticated WebSockets opened through nginx and held idle for
    `hold_seconds`; then each must still answer a ping. The runner samples the relay's RSS
    while they are held."""
    context = tls_context(s["cafile"])
    sockets = [WebSocket(s["port"], context, s["tokens"][i % len(s["tokens"])]) for i in range(s["n"])]
    started = now()
    opened = await bounded(s.get("handshakes", 128), [ws.open() for ws in sockets])
    open_seconds = now() - started
    errors = [repr(r) for r in opened if isinstance(r, BaseException)]
    live = [ws for ws, r in zip(sockets, opened) if not isinstance(r, BaseException)]
    await asyncio.sleep(s["hold_seconds"])

    async def still_open(ws: WebSocket) -> bool:
        ws.send(0x9, b"bench")
        while True:
            opcode, payload = await ws.receive()
            if opcode == 0xA and payload == b"bench":
                return True
            if opcode == 0x8:
                return False

    answered = await bounded(512, [asyncio.wait_for(still_open(ws), 30) for ws in live])
    alive = sum(1 for r in answered if r is True)
    errors += [repr(r) for r in answered if r is not True]
    for ws in sockets:
        ws.close()
    await asyncio.sleep(0.5)
    return {"n": s["n"], "held": alive, "errors": s["n"] - alive, "error_samples": errors[:5],
            "open_seconds": round(open_seconds, 3), "opens_per_second": round(len(live) / open_seconds, 1)}


async def socket_turns(s: dict) -> dict:
    """Scenario 7b: chat turns per second over `n` open sockets, each asking again as soon as
    its previous answer is done, for `duration` seconds."""
    context = tls_context(s["cafile"])
    sockets = [WebSocket(s["port"], context, s["tokens"][i % len(s["tokens"])]) for i in range(s["n"])]
    await bounded(64, [ws.open() for ws in sockets])
    done, errors, latencies = 0, [], []
    stop_at = now() + s["duration"]
    cpu = time.process_time()

    async def converse(ws: WebSocket, conversation: str) -> None:
        nonlocal done
        while now() < stop_at:
            sent = now()
            ws.send_text(json.dumps({"question": "Hello over the socket", "conversation_id": conversation}))
            while True:
                opcode, payload = await ws.receive()
                if opcode == 0x8:
                    errors.append("closed")
                    return
                if opcode != 0x1:
                    continue
                kind = json.loads(payload).get("type")
                if kind == "done":
                    done += 1
                    latencies.append((now() - sent) * 1000)
                    break
                if kind == "error":
                    errors.append(payload.decode()[:200])
                    break

    t0 = now()
    results = await asyncio.wait_for(asyncio.gather(
        *(converse(ws, s["conversations"][i]) for i, ws in enumerate(sockets)), return_exceptions=True),
        s["duration"] + 30)
    wall = now() - t0
    errors += [repr(r) for r in results if isinstance(r, BaseException)]
    for ws in sockets:
        ws.close()
    return {"n": s["n"], "turns": done, "turns_per_second": round(done / wall, 1), "errors": len(errors),
            "error_samples": errors[:5], "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
            "client_cpu_share": round((time.process_time() - cpu) / wall, 3)}


DRIVERS = {"streams": streams_held, "token-latency": token_latency, "fastcgi-tap": fastcgi_tap,
           "sockets-held": sockets_held, "socket-turns": socket_turns}


def main() -> None:
    name, settings = sys.argv[1], json.load(sys.stdin)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    result = asyncio.run(DRIVERS[name](settings))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
