"""Small helpers the API tests share: accounts, and an SSE reader that parses a stream
line by line exactly as Privia's frontend (hooks/useChatSSE.ts) does."""

from __future__ import annotations

import contextlib
import json
import uuid

import httpx

PASSWORD = "correct horse battery staple"


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.test"


def sign_up_and_in(client: httpx.Client, email: str | None = None, password: str = PASSWORD) -> tuple[str, dict]:
    """Signs up, then signs in with the multipart form the frontend sends; returns (token, user)."""
    email = email or new_email()
    r = client.post("/api/auth/signup", json={"email": email, "password": password, "full_name": "E2E"})
    assert r.status_code == 201, r.text
    # files= with (None, value) makes httpx send multipart/form-data fields, like a browser FormData.
    r = client.post("/api/auth/login", files={"username": (None, email), "password": (None, password)})
    assert r.status_code == 200, r.text
    body = r.json()
    return body["access_token"], body["user"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class FrontendSSE:
    """Reads an SSE response the way useChatSSE.ts does: split on \\n, a blank line resets the
    event name, `event:` sets it, only `data: ` lines count; unnamed data is answer text."""

    def __init__(self) -> None:
        self.answer = ""
        self.done: dict | None = None
        self.error: dict | None = None
        self.sources: list | None = None
        self.other_events: list[str] = []
        self.token_events = 0
        self.comments = 0
        self._event = ""
        self._buffer = ""

    def feed(self, text: str) -> None:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self._line(line)

    def _line(self, line: str) -> None:
        if line.strip() == "":
            self._event = ""
        elif line.startswith(":"):
            self.comments += 1
        elif line.startswith("event:"):
            self._event = line[6:].strip()
        elif line.startswith("data: "):
            data = line[6:]
            if self._event == "done":
                self.done = json.loads(data)
            elif self._event == "error":
                self.error = json.loads(data)
            elif self._event == "sources":
                self.sources = json.loads(data)
            else:
                if self._event:
                    self.other_events.append(self._event)
                if data and data != "[DONE]":
                    self.answer += data
                    self.token_events += 1


def hold_streams(client: httpx.Client, token: str, count: int, held: contextlib.ExitStack) -> list:
    """Opens `count` SSE turns, each read up to its second token and left open in `held`:
    streams the pool is holding a thread for. Returns (parser, remaining chunks) per stream."""
    streams = []
    for index in range(count):
        r = held.enter_context(client.stream("POST", "/api/stream", headers=bearer(token),
                                             json={"question": f"a long answer {index}"}))
        assert r.status_code == 200
        parser, chunks = FrontendSSE(), r.iter_text()
        while parser.token_events < 2:
            parser.feed(next(chunks))
        streams.append((parser, chunks))
    return streams
