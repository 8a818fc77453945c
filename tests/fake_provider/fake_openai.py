#!/usr/bin/env python3
"""A fake OpenAI-compatible provider for Privia's tests (standard library only).

It speaks the real streaming wire format of `POST …/chat/completions` with `stream: true`:
HTTP/1.1, `Transfer-Encoding: chunked`, `Content-Type: text/event-stream`, one
`data: {"object": "chat.completion.chunk", …}` event per token, a `finish_reason` chunk, the
usage chunk (empty `choices`) when `stream_options.include_usage` is set, then `data: [DONE]`.

What it does is chosen by the requested model name, `BEHAVIOUR[:key=value…]`, or by an override
set through `POST /_behaviour` (which wins, so a real stack configured with fixed model names can
still be steered):

  stream      (any unknown name too) N tokens `tok0 tok1 …`; keys: tokens=5, delay_ms=0,
              usage=1 (send the usage chunk if asked), done=1 (send [DONE]), model=<reported name>,
              hold=0 (seconds to keep the response open after [DONE] before its last chunk)
  echo        streams the last user message back, word by word (keys as for stream)
  fail-NNN    HTTP NNN with an OpenAI-style JSON error body; key: message=…
  unauthorized  HTTP 401 (same as fail-401)
  rate-limit  HTTP 429 with `Retry-After`; key: retry_after=1
  stall       headers, `after` tokens (0), then silence for up to seconds=60
  drop        `after` tokens (2), then the socket closes without the final chunk or [DONE]
  malformed   `after` tokens (1), then a chunk whose JSON is cut short

Connections are kept alive (HTTP/1.1) after every response that ended properly, errors
included, as real providers do; `drop`, `stall`, `malformed` and a client that left close them.

Control endpoints (JSON):
  GET    /_requests    every request so far (the last --keep-requests of them): path, headers, body,
                       model, behaviour, status, tokens_sent, completed, client_closed (the client left
                       before the end), finished, connection (the number of the TCP connection it came on)
  DELETE /_requests    forget them
  GET    /_connections {"accepted": TCP connections accepted so far, "carried_completions": how many
                       of them carried a chat/completions request, "completions": such requests}
  POST   /_behaviour   {"behaviour": "fail-500", "model": "only-this-model" (default: all),
                        "times": 1 (default: until cleared)}; later overrides are checked first
  DELETE /_behaviour   clear the overrides
  GET    /_health      {"ok": true}

Usage: python3 fake_openai.py --port 0 --port-file PATH [--exit-with-stdin] [--keep-requests N]
                              [--tls-dir DIR] [--verbose]
It binds 127.0.0.1 only. With --port-file the chosen port is written atomically once listening.
With --tls-dir it also speaks HTTPS on the same port, with a self-signed certificate for
127.0.0.1 that it makes at start (DIR/cert.pem, which a client must trust, and DIR/key.pem); a
connection whose first byte starts a TLS handshake gets TLS, any other plain HTTP, so the
control endpoints stay plain.
"""

import argparse
import collections
import itertools
import json
import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
REQUESTS = collections.deque()  # records, see Handler.record; bounded by --keep-requests
REQUEST_IDS = itertools.count(1)
OVERRIDES = []  # [{"behaviour": str, "model": str|None, "times": int|None}]
CONNECTION_IDS = itertools.count(1)
CONNECTIONS = {"accepted": 0, "carried_completions": 0, "completions": 0}
VERBOSE = False


def parse_behaviour(name):
    """'drop:after=3' -> ('drop', {'after': '3'})."""
    parts = (name or "stream").split(":")
    options = {}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        options[key] = value
    return parts[0], options


def take_override(model):
    with LOCK:
        for override in reversed(OVERRIDES):
            if override.get("model") in (None, "*", model):
                if override.get("times") is not None:
                    override["times"] -= 1
                    if override["times"] <= 0:
                        OVERRIDES.remove(override)
                return override["behaviour"]
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"

    def log_message(self, format, *args):
        if VERBOSE:
            sys.stderr.write("fake_openai: " + (format % args) + "\n")

    def setup(self):
        super().setup()
        with LOCK:
            self.connection_id = next(CONNECTION_IDS)
            CONNECTIONS["accepted"] += 1
        self.carried_completion = False

    # ---- plumbing -------------------------------------------------------------------------

    def send_json(self, status, payload, headers=None):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def client_gone(self):
        """True when the client closed its end (EOF or reset), checked without blocking."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            # Peeks at the TCP stream itself, under TLS too (an SSL socket refuses flags).
            return socket.socket.recv(self.connection, 1, socket.MSG_PEEK) == b""
        except (ConnectionError, OSError):
            return True

    def wait(self, seconds):
        """Sleeps up to `seconds`, returning False as soon as the client leaves."""
        deadline = time.monotonic() + seconds
        while True:
            if self.client_gone():
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            select.select([self.connection], [], [], min(left, 0.02))

    def write_chunk(self, data):
        """One HTTP chunk; False when the client is gone."""
        if self.client_gone():
            return False
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            return True
        except (ConnectionError, OSError):
            return False

    def update(self, **changes):
        with LOCK:
            self.record.update(changes)

    # ---- routes ---------------------------------------------------------------------------

    def do_GET(self):
        if self.path.startswith("/_requests"):
            with LOCK:
                snapshot = json.loads(json.dumps(list(REQUESTS)))
            self.send_json(200, snapshot)
        elif self.path.startswith("/_connections"):
            with LOCK:
                counts = dict(CONNECTIONS)
            self.send_json(200, counts)
        elif self.path.startswith("/_health"):
            self.send_json(200, {"ok": True})
        elif self.path.rstrip("/").endswith("/models"):
            self.send_json(200, {"object": "list", "data": [{"id": "stream", "object": "model", "owned_by": "fake"}]})
        else:
            self.send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_DELETE(self):
        with LOCK:
            if self.path.startswith("/_requests"):
                REQUESTS.clear()
            elif self.path.startswith("/_behaviour"):
                OVERRIDES.clear()
        self.send_json(200, {"ok": True})

    def do_POST(self):
        raw = self.read_body()
        if self.path.startswith("/_behaviour"):
            spec = json.loads(raw or b"{}")
            with LOCK:
                OVERRIDES.append({"behaviour": spec["behaviour"], "model": spec.get("model"), "times": spec.get("times")})
            self.send_json(200, {"ok": True})
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self.send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        model = body.get("model", "") if isinstance(body, dict) else ""
        behaviour = take_override(model) or model
        self.record = {
            "path": self.path, "headers": dict(self.headers.items()), "body": body, "model": model,
            "behaviour": behaviour, "status": None, "tokens_sent": 0, "completed": False,
            "client_closed": False, "finished": False, "started": time.time(), "ended": None,
            "connection": self.connection_id,
        }
        with LOCK:
            self.record["id"] = next(REQUEST_IDS)
            REQUESTS.append(self.record)
            CONNECTIONS["completions"] += 1
            if not self.carried_completion:
                CONNECTIONS["carried_completions"] += 1
        self.carried_completion = True
        try:
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                self.update(status=400)
                self.send_json(400, {"error": {"message": "messages is required", "type": "invalid_request_error"}})
                return
            self.answer(behaviour, body)
        finally:
            self.update(finished=True, ended=time.time())

    # ---- behaviours -----------------------------------------------------------------------

    def answer(self, behaviour, body):
        kind, options = parse_behaviour(behaviour)
        if kind == "unauthorized":
            kind = "fail-401"
        if kind.startswith("fail-"):
            status = int(kind[5:])
            self.update(status=status)
            message = options.get("message") or "fake failure with HTTP %d" % status
            self.send_json(status, {"error": {"message": message, "type": "fake_error", "code": status}})
            return
        if kind == "rate-limit":
            self.update(status=429)
            self.send_json(429, {"error": {"message": "Rate limit reached (fake)", "type": "rate_limit_error"}},
                           headers={"Retry-After": options.get("retry_after", "1")})
            return
        # The connection is kept only once the response ended properly (the last chunk sent).
        self.close_connection = True
        if kind in ("stream", "echo") and int(options.get("delay_ms", "0")) == 0 and "hold" not in options:
            self.stream_at_once(kind, options, body)
        else:
            self.stream(kind, options, body)

    def stream_at_once(self, kind, options, body):
        """The whole answer in one write: what the paced writer below sends when there is no
        delay, without a system call and a check for the client per token (the benchmark's
        provider streams at full speed, and must not be the slowest part of a turn)."""
        reported = options.get("model") or body.get("model") or "fake"
        created = int(time.time())
        if kind == "echo":
            pieces = answer_pieces(kind, options, body["messages"])
            tokens = [event_bytes(chunk(created, reported, {"content": piece})) for piece in pieces]
        else:
            tokens = token_events(reported, int(options.get("tokens", "5")))
        events = [b": fake-provider processing\n\n", event_bytes(chunk(created, reported, {"role": "assistant", "content": ""}))]
        events += tokens + closing_events(options, body, created, reported, len(tokens))
        try:
            self.wfile.write(STREAM_HEAD + b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n")
            self.wfile.flush()
        except (ConnectionError, OSError):
            return self.update(status=200, client_closed=True)
        self.update(status=200, tokens_sent=len(tokens), completed=True)
        self.close_connection = False

    def stream(self, kind, options, body):
        self.update(status=200)
        self.wfile.write(STREAM_HEAD)
        self.wfile.flush()

        reported = options.get("model") or body.get("model") or "fake"
        pieces = answer_pieces(kind, options, body["messages"])
        delay = int(options.get("delay_ms", "0")) / 1000
        after = int(options.get("after", {"stall": "0", "drop": "2", "malformed": "1"}.get(kind, "0")))
        created = int(time.time())

        if not self.write_chunk(b": fake-provider processing\n\n") or \
                not self.write_chunk(event_bytes(chunk(created, reported, {"role": "assistant", "content": ""}))):
            return self.update(client_closed=True)
        limit = after if kind in ("stall", "drop", "malformed") else len(pieces)
        for index in range(limit):
            if delay and not self.wait(delay):
                return self.update(client_closed=True)
            piece = pieces[index] if index < len(pieces) else "tok%d " % index
            if not self.write_chunk(event_bytes(chunk(created, reported, {"content": piece}))):
                return self.update(client_closed=True)
            self.update(tokens_sent=index + 1)

        if kind == "stall":
            if not self.wait(float(options.get("seconds", "60"))):
                self.update(client_closed=True)
            return
        if kind == "drop":
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if kind == "malformed":
            self.write_chunk(b'data: {"id": "chatcmpl-fake", "choices": [{"delta": {"content": "oops\n\n')
            self.wait(1)
            return

        for event in closing_events(options, body, created, reported, limit):
            if not self.write_chunk(event):
                return self.update(client_closed=True)
        self.update(completed=True)
        hold = float(options.get("hold", "0"))
        if hold and not self.wait(hold):
            return self.update(client_closed=True)
        # The last chunk: the response ended properly (a client may already have left after [DONE]).
        if self.write_chunk(b""):
            self.close_connection = False


STREAM_HEAD = (b"HTTP/1.1 200 OK\r\nServer: FakeOpenAI/1.0\r\nContent-Type: text/event-stream\r\n"
               b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")
TOKEN_EVENTS = {}  # (reported model, token count) -> the token events of a `stream` answer


def answer_pieces(kind, options, messages):
    """The answer's tokens: the last user message word by word (echo), or `tok0 tok1 …`."""
    if kind == "echo":
        last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
        words = last.split(" ")
        return [w + " " for w in words[:-1]] + [words[-1]] if words else []
    return ["tok%d " % i for i in range(int(options.get("tokens", "5")))]


def chunk(created, reported, delta, finish=None):
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": reported,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def event_bytes(payload):
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return ("data: " + text + "\n\n").encode()


def token_events(reported, count):
    """The token events of a `stream` answer, built once per model and length."""
    key = (reported, count)
    events = TOKEN_EVENTS.get(key)
    if events is None:
        created = int(time.time())
        events = [event_bytes(chunk(created, reported, {"content": "tok%d " % i})) for i in range(count)]
        with LOCK:
            if len(TOKEN_EVENTS) > 256:
                TOKEN_EVENTS.clear()
            TOKEN_EVENTS[key] = events
    return events


def closing_events(options, body, created, reported, count):
    """After the tokens: the finish_reason chunk, the usage chunk if asked, [DONE]."""
    events = [event_bytes(chunk(created, reported, {}, finish="stop"))]
    if (body.get("stream_options") or {}).get("include_usage") and options.get("usage", "1") != "0":
        prompt = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        events.append(event_bytes({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created,
                                   "model": reported, "choices": [],
                                   "usage": {"prompt_tokens": prompt, "completion_tokens": count,
                                             "total_tokens": prompt + count}}))
    if options.get("done", "1") != "0":
        events.append(event_bytes("[DONE]"))
    return events


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5: a client opening tens of connections at once
    # would see SYNs dropped and retried a second later, and measure that instead of itself.
    request_queue_size = 1024
    tls = None  # an ssl.SSLContext with --tls-dir

    def finish_request(self, request, client_address):
        """In the connection's own thread: TLS when its first byte opens a handshake record."""
        wrapped = None
        if self.tls is not None:
            try:
                request.settimeout(10)
                first = request.recv(1, socket.MSG_PEEK)
                request.settimeout(None)
                if first == b"\x16":
                    request = wrapped = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        try:
            super().finish_request(request, client_address)
        finally:
            if wrapped is not None:
                wrapped.close()


def tls_context(directory):
    """A server context with a self-signed certificate for 127.0.0.1, made now in `directory`."""
    os.makedirs(directory, exist_ok=True)
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    return context


def main():
    global VERBOSE, REQUESTS
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible provider (127.0.0.1 only)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the chosen port here once listening")
    parser.add_argument("--exit-with-stdin", action="store_true", help="exit when stdin reaches EOF (the parent died)")
    parser.add_argument("--keep-requests", type=int, default=0, help="keep only the last N request records (0: all)")
    parser.add_argument("--tls-dir", help="speak HTTPS with a self-signed certificate made here")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    VERBOSE = args.verbose
    REQUESTS = collections.deque(maxlen=args.keep_requests or None)

    server = Server(("127.0.0.1", args.port), Handler)
    if args.tls_dir:
        server.tls = tls_context(args.tls_dir)
    port = server.server_address[1]
    if args.port_file:
        temporary = args.port_file + ".tmp"
        with open(temporary, "w") as handle:
            handle.write("%d\n" % port)
        os.replace(temporary, args.port_file)
    print("fake_openai listening on 127.0.0.1:%d" % port, file=sys.stderr, flush=True)
    if args.exit_with_stdin:
        def watch_stdin():
            while sys.stdin.buffer.read(4096):
                pass
            os._exit(0)
        threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
