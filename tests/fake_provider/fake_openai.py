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
              usage=1 (send the usage chunk if asked), done=1 (send [DONE]), model=<reported name>
  echo        streams the last user message back, word by word (keys as for stream)
  fail-NNN    HTTP NNN with an OpenAI-style JSON error body; key: message=…
  unauthorized  HTTP 401 (same as fail-401)
  rate-limit  HTTP 429 with `Retry-After`; key: retry_after=1
  stall       headers, `after` tokens (0), then silence for up to seconds=60
  drop        `after` tokens (2), then the socket closes without the final chunk or [DONE]
  malformed   `after` tokens (1), then a chunk whose JSON is cut short

Control endpoints (JSON):
  GET    /_requests    every request so far: path, headers, body, model, behaviour, status,
                       tokens_sent, completed, client_closed (the client left before the end), finished
  DELETE /_requests    forget them
  POST   /_behaviour   {"behaviour": "fail-500", "model": "only-this-model" (default: all),
                        "times": 1 (default: until cleared)}; later overrides are checked first
  DELETE /_behaviour   clear the overrides
  GET    /_health      {"ok": true}

Usage: python3 fake_openai.py --port 0 --port-file PATH [--exit-with-stdin] [--verbose]
It binds 127.0.0.1 only. With --port-file the chosen port is written atomically once listening.
"""

import argparse
import json
import os
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
REQUESTS = []  # records, see Handler.record
OVERRIDES = []  # [{"behaviour": str, "model": str|None, "times": int|None}]
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
            return self.connection.recv(1, socket.MSG_PEEK) == b""
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

    def event(self, payload):
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return self.write_chunk(("data: " + text + "\n\n").encode())

    def update(self, **changes):
        with LOCK:
            self.record.update(changes)

    # ---- routes ---------------------------------------------------------------------------

    def do_GET(self):
        if self.path.startswith("/_requests"):
            with LOCK:
                snapshot = json.loads(json.dumps(REQUESTS))
            self.send_json(200, snapshot)
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
        }
        with LOCK:
            self.record["id"] = len(REQUESTS) + 1
            REQUESTS.append(self.record)
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
            self.close_connection = True
            return
        if kind == "rate-limit":
            self.update(status=429)
            self.send_json(429, {"error": {"message": "Rate limit reached (fake)", "type": "rate_limit_error"}},
                           headers={"Retry-After": options.get("retry_after", "1")})
            self.close_connection = True
            return
        self.stream(kind, options, body)

    def stream(self, kind, options, body):
        self.close_connection = True
        self.update(status=200)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()

        messages = body["messages"]
        reported = options.get("model") or body.get("model") or "fake"
        if kind == "echo":
            last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
            words = last.split(" ")
            pieces = [w + " " for w in words[:-1]] + [words[-1]] if words else []
        else:
            pieces = ["tok%d " % i for i in range(int(options.get("tokens", "5")))]
        delay = int(options.get("delay_ms", "0")) / 1000
        after = int(options.get("after", {"stall": "0", "drop": "2", "malformed": "1"}.get(kind, "0")))
        created = int(time.time())

        def chunk(delta, finish=None):
            return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": reported,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        if not self.write_chunk(b": fake-provider processing\n\n") or not self.event(chunk({"role": "assistant", "content": ""})):
            return self.update(client_closed=True)
        limit = after if kind in ("stall", "drop", "malformed") else len(pieces)
        for index in range(limit):
            if delay and not self.wait(delay):
                return self.update(client_closed=True)
            piece = pieces[index] if index < len(pieces) else "tok%d " % index
            if not self.event(chunk({"content": piece})):
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

        if not self.event(chunk({}, finish="stop")):
            return self.update(client_closed=True)
        if (body.get("stream_options") or {}).get("include_usage") and options.get("usage", "1") != "0":
            prompt = sum(len(str(m.get("content", "")).split()) for m in messages)
            usage = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": reported,
                     "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": limit,
                                              "total_tokens": prompt + limit}}
            if not self.event(usage):
                return self.update(client_closed=True)
        if options.get("done", "1") != "0" and not self.event("[DONE]"):
            return self.update(client_closed=True)
        self.update(completed=True)
        self.write_chunk(b"")  # the last chunk: the response ended properly (a client may already have left after [DONE])


def main():
    global VERBOSE
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible provider (127.0.0.1 only)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the chosen port here once listening")
    parser.add_argument("--exit-with-stdin", action="store_true", help="exit when stdin reaches EOF (the parent died)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    VERBOSE = args.verbose

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
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
