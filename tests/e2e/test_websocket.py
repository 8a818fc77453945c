"""Privia's chat WebSocket through the real stack: wss via nginx → privia-relay → the FastCGI pool.

Every read has a deadline: a frame that never comes fails the test, it never hangs it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
import websocket

from api_client import bearer, sign_up_and_in
from conftest import ALLOWED_ORIGIN, REFUSED_ORIGIN, Stack, running_stack

STUB_REPLY = (
    "No language model is connected to this Privia server yet, so this is a placeholder answer. "
    "An operator can point it at an OpenAI-compatible provider such as OpenRouter, Ollama, vLLM or llama.cpp."
)
POLICY_VIOLATION = 1008


# ---------------------------------------------------------------------------
# A small WebSocket client, the way the frontend (hooks/useChatWS.ts) uses the socket
# ---------------------------------------------------------------------------


def connect(stack: Stack, token: str | None = None, *, via: str = "query", origin: str | None = ALLOWED_ORIGIN,
            host: str = "127.0.0.1") -> websocket.WebSocket:
    """Opens /api/ws/chat through nginx, with the token in the query, the auth-token cookie or a
    bearer header; `origin=None` sends no Origin at all (a non-browser client)."""
    url = f"wss://{host}:{stack.https_port}/api/ws/chat"
    header, cookie = [], None
    if token is not None:
        if via == "query":
            url += "?token=" + quote(token, safe="")
        elif via == "cookie":
            cookie = f"theme=dark; auth-token={token}"
        elif via == "header":
            header.append(f"Authorization: Bearer {token}")
        else:
            raise ValueError(via)
    return websocket.create_connection(
        url, header=header, cookie=cookie, origin=origin, suppress_origin=origin is None,
        sslopt={"ca_certs": stack.ca_file}, timeout=5,
    )


def receive(ws: websocket.WebSocket, timeout: float, pongs: list[bytes] | None = None) -> dict | None:
    """The next JSON text frame within `timeout` seconds, or None. Pongs go to `pongs`; the
    server closing the socket fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ws.settimeout(left)
        try:
            opcode, frame = ws.recv_data_frame(control_frame=True)
        except websocket.WebSocketTimeoutException:
            return None
        if opcode == websocket.ABNF.OPCODE_TEXT:
            return json.loads(frame.data.decode())
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise AssertionError(f"the server closed the socket: {parse_close(frame.data)}")
        if opcode == websocket.ABNF.OPCODE_PONG and pongs is not None:
            pongs.append(frame.data)
        assert opcode != websocket.ABNF.OPCODE_BINARY, "the server sent a binary frame"


def parse_close(data: bytes) -> tuple[int | None, str]:
    if len(data) < 2:
        return None, ""
    return struct.unpack("!H", data[:2])[0], data[2:].decode()


def read_close(ws: websocket.WebSocket, timeout: float = 5.0) -> tuple[int | None, str]:
    """Waits for the server's close frame (and answers it); returns its code and reason."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "the server did not close the socket"
        ws.settimeout(left)
        try:
            opcode, frame = ws.recv_data_frame(control_frame=True)
        except websocket.WebSocketTimeoutException:
            continue
        except websocket.WebSocketConnectionClosedException:
            raise AssertionError("the connection dropped without a close frame")
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return parse_close(frame.data)
        assert opcode != websocket.ABNF.OPCODE_TEXT, f"a frame before the close: {frame.data!r}"


@dataclass
class Turn:
    tokens: list[str] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    end: dict = field(default_factory=dict)

    @property
    def answer(self) -> str:
        return "".join(self.tokens)


def send(ws: websocket.WebSocket, message: dict | str) -> None:
    ws.send(message if isinstance(message, str) else json.dumps(message))


def run_turn(ws: websocket.WebSocket, message: dict | str, timeout: float = 10.0) -> Turn:
    """Sends one question and reads until its `done` or `error` frame; workspace events that
    arrive meanwhile are kept apart."""
    send(ws, message)
    return finish_turn(ws, timeout)


def finish_turn(ws: websocket.WebSocket, timeout: float, turn: Turn | None = None) -> Turn:
    """Reads the running turn's frames until its `done` or `error` frame, adding to `turn`."""
    turn = turn or Turn()
    deadline = time.monotonic() + timeout
    while True:
        frame = receive(ws, deadline - time.monotonic())
        assert frame is not None, f"the turn did not end within {timeout}s (tokens so far: {turn.answer!r})"
        kind = frame.get("type")
        if kind == "token":
            assert frame == {"type": "token", "content": frame["content"], "mode": "stream"}, frame
            turn.tokens.append(frame["content"])
        elif kind == "event":
            turn.events.append(frame)
        elif kind in ("done", "error"):
            turn.end = frame
            return turn
        else:
            pytest.fail(f"unexpected frame {frame}")


def assert_done(turn: Turn) -> dict:
    done = turn.end
    assert done.get("type") == "done", done
    assert done["mode"] == "stub" and done["sources"] == [], done
    assert done["conversation_id"] and done["message_id"], done
    assert turn.answer == STUB_REPLY, turn.answer
    assert len(turn.tokens) > 5, "the answer came in one piece, not streamed"
    return done


def assert_open(ws: websocket.WebSocket) -> None:
    """The socket is accepted and answering: a blank question gets its error frame, not a close."""
    turn = run_turn(ws, {"question": " "}, timeout=5)
    assert turn.end == {"type": "error", "content": "Question is required"}, turn.end


def conversation(client, token: str, conversation_id: str) -> dict:
    r = client.get(f"/api/conversations/{conversation_id}", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


def wait_for_stopped_answer(client, token: str, conversation_id: str, messages: int, within: float) -> dict:
    """Polls REST until the conversation has `messages` messages, the last an assistant one."""
    deadline = time.monotonic() + within
    while True:
        found = conversation(client, token, conversation_id)["messages"]
        if len(found) == messages and found[-1]["role"] == "assistant":
            return found[-1]
        assert time.monotonic() < deadline, f"no answer was saved within {within}s: {found}"
        time.sleep(0.05)


def tokens_until(ws: websocket.WebSocket, count: int, timeout: float = 5.0) -> list[str]:
    tokens: list[str] = []
    deadline = time.monotonic() + timeout
    while len(tokens) < count:
        frame = receive(ws, deadline - time.monotonic())
        assert frame is not None, f"only {len(tokens)} tokens within {timeout}s"
        assert frame["type"] in ("token", "event"), frame
        if frame["type"] == "token":
            tokens.append(frame["content"])
    return tokens


def resigned(stack: Stack, token: str, **claims) -> str:
    """The same access token with some claims changed, signed with the stack's own key
    (PRIVIA_SECRET_KEY is unset, so the pool keeps it in the data directory)."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header, payload, _ = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(claims)
    signing_input = f"{header}.{b64(json.dumps(body, separators=(',', ':')).encode())}"
    key = (stack.data_dir / "secret_key").read_text().strip().encode()
    return f"{signing_input}.{b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())}"


@pytest.fixture(scope="module")
def member(stack) -> str:
    """A token for the tests that need a user but not a fresh one."""
    with stack.client() as client:
        return sign_up_and_in(client)[0]


def forge(token: str) -> str:
    """The token with the first character of its signature changed (all six of its bits count)."""
    signing_input, signature = token.rsplit(".", 1)
    return f"{signing_input}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


# ---------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["query", "cookie", "header"])
def test_a_token_in_the_query_the_cookie_or_a_bearer_header_opens_a_working_chat(stack, member, via):
    token = member
    ws = connect(stack, token, via=via)
    try:
        assert ws.getstatus() == 101
        assert_done(run_turn(ws, {"question": f"hello over {via}"}))
    finally:
        ws.close()


def test_a_socket_without_a_valid_token_is_closed_with_1008(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        revoked, _ = sign_up_and_in(client)
        assert client.post("/api/auth/logout", headers=bearer(revoked)).status_code == 204
    expired = resigned(stack, token, exp=int(time.time()) - 60)
    # The same re-signing with a future expiry is accepted: the expiry alone is what is refused.
    still_valid = resigned(stack, token, exp=int(time.time()) + 600)
    ws = connect(stack, still_valid, via="header")
    try:
        assert_open(ws)
    finally:
        ws.close()

    cases = {
        "no token": dict(token=None),
        "garbage in the query": dict(token="not-a-jwt", via="query"),
        "forged bearer": dict(token=forge(token), via="header"),
        "expired cookie": dict(token=expired, via="cookie"),
        "logged out": dict(token=revoked, via="query"),
    }
    for name, options in cases.items():
        ws = connect(stack, **options)
        try:
            code, reason = read_close(ws)
            assert code == POLICY_VIOLATION, (name, code, reason)
        finally:
            ws.close()


# ---------------------------------------------------------------------------
# Turns
# ---------------------------------------------------------------------------


def test_a_turn_streams_deltas_then_done_and_is_saved(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        ws = connect(stack, token)
        try:
            turn = run_turn(ws, {"question": "What is Privia?"})
        finally:
            ws.close()
        done = assert_done(turn)
        assert turn.answer.startswith("No language model is connected")
        assert list(done)[:2] == ["type", "conversation_id"], done
        saved = conversation(client, token, done["conversation_id"])
        assert saved["title"] == "What is Privia?"
        assert [(m["role"], m["content"]) for m in saved["messages"]] == [
            ("user", "What is Privia?"), ("assistant", STUB_REPLY.strip())]
        assert saved["messages"][-1]["id"] == done["message_id"]
        assert saved["messages"][-1]["status"] == "complete"


def test_a_bare_text_frame_is_a_question_and_the_conversation_id_continues_it(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        ws = connect(stack, token)
        try:
            first = assert_done(run_turn(ws, "plain text, not JSON"))
            second = assert_done(run_turn(ws, {"question": "and a follow-up", "conversation_id": first["conversation_id"]}))
        finally:
            ws.close()
        assert second["conversation_id"] == first["conversation_id"]
        assert second["message_id"] != first["message_id"]
        messages = conversation(client, token, first["conversation_id"])["messages"]
        assert [(m["role"], m["content"]) for m in messages] == [
            ("user", "plain text, not JSON"), ("assistant", STUB_REPLY.strip()),
            ("user", "and a follow-up"), ("assistant", STUB_REPLY.strip())]
        assert messages[1]["id"] == first["message_id"] and messages[3]["id"] == second["message_id"]
        listed = client.get("/api/conversations", headers=bearer(token)).json()
        assert [c["id"] for c in listed] == [first["conversation_id"]]


def test_a_blank_question_is_refused_and_the_socket_stays_open(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        ws = connect(stack, token)
        try:
            for blank in [{"question": ""}, {"question": "  \n\t "}, {}, "   "]:
                turn = run_turn(ws, blank, timeout=5)
                assert turn.end == {"type": "error", "content": "Question is required"}, (blank, turn.end)
                assert turn.tokens == []
            assert_done(run_turn(ws, {"question": "now a real one"}))
        finally:
            ws.close()
        # Nothing was saved for the blank ones.
        listed = client.get("/api/conversations", headers=bearer(token)).json()
        assert [c["message_count"] for c in listed] == [2]


def test_a_foreign_or_unknown_conversation_is_not_found_and_the_socket_stays_open(stack):
    with stack.client() as client:
        owner, _ = sign_up_and_in(client)
        intruder, _ = sign_up_and_in(client)
        theirs = client.post("/api/conversations", headers=bearer(owner), json={"title": "private"}).json()["id"]
        ws = connect(stack, intruder)
        try:
            for conversation_id in [theirs, "00000000-0000-4000-8000-000000000000"]:
                turn = run_turn(ws, {"question": "let me in", "conversation_id": conversation_id}, timeout=5)
                assert turn.end.get("type") == "error", turn.end
                assert "not found" in turn.end["content"].lower(), turn.end
                assert turn.tokens == []
            assert_done(run_turn(ws, {"question": "my own chat"}))
        finally:
            ws.close()
        untouched = conversation(client, owner, theirs)
        assert untouched["messages"] == [] and untouched["title"] == "private", untouched


# ---------------------------------------------------------------------------
# Stop (Privia ignores it; this server stops)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_stack():
    """One worker of two threads and a slow stub (100 ms a token, so a whole answer takes ~3.5 s):
    a stopped turn that kept its thread would starve the pool within two turns."""
    with running_stack({"PRIVIA_STUB_DELAY_MS": "100", "PRIVIA_WORKERS": "1", "PRIVIA_THREADS": "2"}, name="ws-stop") as s:
        yield s


def test_stop_ends_the_turn_keeps_the_partial_answer_and_frees_the_thread(slow_stack):
    with slow_stack.client() as client:
        token, _ = sign_up_and_in(client)
        chat = client.post("/api/conversations", headers=bearer(token), json={}).json()["id"]
        ws = connect(slow_stack, token)
        try:
            for attempt in range(3):
                send(ws, {"question": f"a long answer please ({attempt})", "conversation_id": chat})
                tokens = tokens_until(ws, 2)
                send(ws, {"type": "stop"})
                stopped_at = time.monotonic()
                # Four token intervals: only a token already in flight may come, then the turn's `done`.
                done = None
                while (frame := receive(ws, stopped_at + 0.4 - time.monotonic())) is not None:
                    if frame["type"] == "token":
                        late = time.monotonic() - stopped_at
                        assert late < 0.1 and done is None, f"a token {late:.3f}s after stop"
                        tokens.append(frame["content"])
                    elif frame["type"] == "done":
                        done = frame
                assert done is not None and done["status"] == "stopped", done
                message = wait_for_stopped_answer(client, token, chat, messages=2 * (attempt + 1),
                                                  within=stopped_at + 1.0 - time.monotonic())
                assert message["status"] == "stopped" and message["id"] == done["message_id"], message
                seen = "".join(tokens).strip()
                assert message["content"].startswith(seen), (message["content"], seen)
                assert STUB_REPLY.startswith(message["content"])
                assert len(message["content"]) < len(STUB_REPLY) / 2, "the generation ran on after stop"
            started = time.monotonic()
            assert client.get("/api/conversations", headers=bearer(token)).status_code == 200
            assert time.monotonic() - started < 1.0, "the pool's threads are still busy with stopped turns"
            # The same socket still answers in full.
            done = assert_done(run_turn(ws, {"question": "all of it now", "conversation_id": chat}, timeout=15))
        finally:
            ws.close()
        messages = conversation(client, token, chat)["messages"]
        assert len(messages) == 8 and messages[-1]["id"] == done["message_id"]
        assert [m["status"] for m in messages if m["role"] == "assistant"] == ["stopped"] * 3 + ["complete"]


def test_stop_ends_the_turn_with_a_stopped_done_naming_the_partial_answer(slow_stack):
    # Privia's frontend ends a turn on `done` or `error` only: without one it spins forever.
    with slow_stack.client() as client:
        token, _ = sign_up_and_in(client)
        ws = connect(slow_stack, token)
        try:
            send(ws, {"question": "a long answer, then stop"})
            turn = Turn(tokens=tokens_until(ws, 1))
            send(ws, {"type": "stop"})
            finish_turn(ws, timeout=3, turn=turn)
            # The socket takes the next question at once.
            after = run_turn(ws, {"question": "and a whole one", "conversation_id": turn.end.get("conversation_id")})
        finally:
            ws.close()
        done = turn.end
        assert done["type"] == "done" and done["status"] == "stopped" and done["stopped"] is True, done
        assert done["mode"] == "stub" and done["conversation_id"] and done["message_id"], done
        saved = conversation(client, token, done["conversation_id"])["messages"]
        assert [(m["role"], m["status"]) for m in saved[:2]] == [("user", "complete"), ("assistant", "stopped")]
        assert saved[1]["id"] == done["message_id"]
        # The client saw exactly what was kept: the tokens that came before `done`.
        assert saved[1]["content"] == turn.answer.strip() and STUB_REPLY.startswith(turn.answer), turn.answer
        assert len(turn.answer) < len(STUB_REPLY) / 2, "the generation ran on after stop"
        assert assert_done(after)["status"] == "complete"


@pytest.mark.parametrize("how", ["close frame", "dropped connection"])
def test_leaving_mid_turn_keeps_a_stopped_answer(slow_stack, how):
    with slow_stack.client() as client:
        token, _ = sign_up_and_in(client)
        chat = client.post("/api/conversations", headers=bearer(token), json={}).json()["id"]
        ws = connect(slow_stack, token)
        try:
            send(ws, {"question": "I will leave early", "conversation_id": chat})
            seen = "".join(tokens_until(ws, 2)).strip()
        finally:
            if how == "close frame":
                ws.close()
            else:
                ws.shutdown()
        message = wait_for_stopped_answer(client, token, chat, messages=2, within=1.5)
        assert message["status"] == "stopped", message
        assert message["content"].startswith(seen) and len(message["content"]) < len(STUB_REPLY) / 2, message


# ---------------------------------------------------------------------------
# Origins
# ---------------------------------------------------------------------------


def test_an_upgrade_from_a_refused_origin_is_403_and_allowed_ones_chat(stack, member):
    token = member
    for origin in [REFUSED_ORIGIN, "https://evil.example", "null"]:
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            connect(stack, token, origin=origin)
        assert refused.value.status_code == 403, origin
    ws = connect(stack, token, origin=ALLOWED_ORIGIN)
    try:
        assert_done(run_turn(ws, {"question": "from the allowlisted app"}))
    finally:
        ws.close()
    ws = connect(stack, token, origin=None)  # a non-browser client sends no Origin
    try:
        assert_open(ws)
    finally:
        ws.close()


def test_an_upgrade_from_the_servers_own_origin_is_accepted(stack, member):
    # A web client served by this nginx (same scheme, host and port) is not cross-origin:
    # nginx lets it through (snippets/privia/http.conf, "same origin as the request"), and
    # the socket must then work, whether or not the operator listed that origin.
    token = member
    ws = connect(stack, token, origin=f"https://127.0.0.1:{stack.https_port}")
    try:
        assert_done(run_turn(ws, {"question": "same origin"}))
    finally:
        ws.close()


# ---------------------------------------------------------------------------
# Workspace events and liveness
# ---------------------------------------------------------------------------


def events_until(ws: websocket.WebSocket, kind: str, timeout: float = 2.0) -> dict[str, dict]:
    """Event frames by kind, read until one of `kind` arrives."""
    found: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while kind not in found:
        frame = receive(ws, deadline - time.monotonic())
        assert frame is not None, f"no {kind} event within {timeout}s (got {sorted(found)})"
        assert frame["type"] == "event", f"another tab's turn leaked a frame: {frame}"
        found[frame["kind"]] = frame
    return found


def test_a_turn_in_one_tab_reaches_the_users_other_tabs_and_nobody_else(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        stranger, _ = sign_up_and_in(client)
        tab, other_tab, strangers_tab = connect(stack, token), connect(stack, token), connect(stack, stranger)
        try:
            done = assert_done(run_turn(tab, {"question": "Plan the team offsite"}))
            chat = done["conversation_id"]
            seen = events_until(other_tab, "message.finished")
            created = seen["conversation.created"]["conversation"]
            assert created["id"] == chat and created["title"] == "Plan the team offsite", created
            assert "conversation.renamed" not in seen, "a new conversation is made with its title"
            finished = seen["message.finished"]
            assert finished["conversation_id"] == chat and finished["message_id"] == done["message_id"], finished

            # REST changes reach the sockets too: two tabs never disagree.
            assert client.patch(f"/api/conversations/{chat}", headers=bearer(token), json={"title": "Offsite"}).status_code == 200
            renamed = events_until(other_tab, "conversation.renamed")["conversation.renamed"]
            assert renamed["conversation_id"] == chat and renamed["title"] == "Offsite"
            assert client.delete(f"/api/conversations/{chat}", headers=bearer(token)).status_code == 204
            deleted = events_until(other_tab, "conversation.deleted")["conversation.deleted"]
            assert deleted["conversation_id"] == chat

            # Everything above reached the other tab; none of it reached another user. Events go
            # out in the order they happened: the stranger's own next one comes first.
            own = client.post("/api/conversations", headers=bearer(stranger), json={}).json()["id"]
            first = events_until(strangers_tab, "conversation.created")
            assert list(first) == ["conversation.created"], first
            assert first["conversation.created"]["conversation"]["id"] == own, first
        finally:
            for ws in (tab, other_tab, strangers_tab):
                ws.close()


def test_what_the_other_tabs_see_of_a_first_question(stack):
    """A first question with no conversation to go to makes one already titled, counting it: one
    `conversation.created`. After "new chat" opened an empty one, the first question goes there
    and gives it its title: `conversation.renamed`."""
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        tab, other_tab = connect(stack, token), connect(stack, token)
        try:
            assert_open(other_tab)  # signed in, so the events reach it
            first = assert_done(run_turn(tab, {"question": "Plan the team offsite"}))
            seen = events_until(other_tab, "message.finished")
            assert list(seen) == ["conversation.created", "message.finished"], seen
            created = seen["conversation.created"]["conversation"]
            assert (created["id"], created["title"], created["status"], created["message_count"]) == (
                first["conversation_id"], "Plan the team offsite", "active", 1), created

            empty = client.post("/api/conversations", headers=bearer(token), json={}).json()
            created = events_until(other_tab, "conversation.created")["conversation.created"]["conversation"]
            assert created["id"] == empty["id"] and created["status"] == "empty", created
            second = assert_done(run_turn(tab, {"question": "Book the venue"}))
            assert second["conversation_id"] == empty["id"]
            seen = events_until(other_tab, "message.finished")
            assert list(seen) == ["conversation.renamed", "message.finished"], seen
            renamed = seen["conversation.renamed"]
            assert renamed["conversation_id"] == empty["id"] and renamed["title"] == "Book the venue", renamed
            assert seen["message.finished"]["message_id"] == second["message_id"]
        finally:
            for ws in (tab, other_tab):
                ws.close()


def test_a_ping_is_answered_through_nginx_even_mid_turn(stack, member):
    token = member
    ws = connect(stack, token)
    try:
        send(ws, {"question": "keep talking"})
        tokens = tokens_until(ws, 1)
        ws.ping(b"still there?")
        pongs: list[bytes] = []
        deadline = time.monotonic() + 10
        while True:
            frame = receive(ws, deadline - time.monotonic(), pongs)
            assert frame is not None, "the turn did not end"
            if frame["type"] == "token":
                tokens.append(frame["content"])
            elif frame["type"] == "done":
                break
        assert pongs == [b"still there?"], "no pong before the turn ended"
        assert "".join(tokens) == STUB_REPLY
        ws.ping(b"idle")
        deadline = time.monotonic() + 2
        while pongs[-1] != b"idle":
            frame = receive(ws, min(0.05, deadline - time.monotonic()), pongs)
            assert frame is None or frame["type"] == "event", frame
            assert time.monotonic() < deadline, "no pong to an idle ping"
    finally:
        ws.close()


def test_generation_controls_and_idempotency_work_over_the_socket(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        ws = connect(stack, token)
        try:
            first = assert_done(run_turn(ws, {"question": "first question"}))
            cid = first["conversation_id"]
            regenerated = assert_done(run_turn(ws, {"action": "regenerate", "conversation_id": cid}))
            assert regenerated["message_id"] != first["message_id"]
            edited = assert_done(run_turn(ws, {"action": "edit", "question": "edited question", "conversation_id": cid}))
            keyed = assert_done(run_turn(ws, {"question": "once only", "conversation_id": cid, "idempotency_key": "ws-1"}))
            replay = run_turn(ws, {"question": "once only", "conversation_id": cid, "idempotency_key": "ws-1"})
        finally:
            ws.close()
        assert replay.end["message_id"] == keyed["message_id"] and replay.answer == STUB_REPLY
        messages = conversation(client, token, cid)["messages"]
        assert [(m["role"], m["content"]) for m in messages] == [
            ("user", "edited question"), ("assistant", STUB_REPLY.strip()),
            ("user", "once only"), ("assistant", STUB_REPLY.strip())]
        assert messages[1]["id"] == edited["message_id"] and messages[3]["id"] == keyed["message_id"]
