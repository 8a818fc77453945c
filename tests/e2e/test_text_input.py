"""Text that cannot be stored whole is refused with 400 VALIDATION, never cut short: a NUL
character in any text field, a body that is not UTF-8, a lone surrogate escape."""

from __future__ import annotations

import json

from api_client import PASSWORD, bearer, new_email, sign_up_and_in
from test_websocket import assert_done, connect, run_turn

NUL = "before\u0000after"


def assert_refused(r, field: str | None = None) -> None:
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.json()["code"] == "VALIDATION" and r.json()["detail"], r.text
    if field:
        assert field in r.json()["detail"], r.text


def raw_json(text: str) -> dict:
    """A body written by hand, so escapes like \\ud800 reach the server as they are."""
    return {"content": text.encode(), "headers": {"Content-Type": "application/json"}}


def messages(client, token, conversation_id) -> list[dict]:
    r = client.get(f"/api/conversations/{conversation_id}", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def test_a_question_with_a_nul_is_refused_over_rest_and_sse_and_nothing_is_stored(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        chat = client.post("/api/conversations", headers=bearer(token), json={}).json()["id"]
        for path in ["/api/query", "/api/stream"]:
            assert_refused(client.post(path, headers=bearer(token), json={"question": NUL, "conversation_id": chat}), "question")
            assert_refused(client.post(path, headers=bearer(token),
                                       json={"question": "fine", "conversation_id": chat, "idempotency_key": NUL}))
            assert_refused(client.post(path, headers=bearer(token),
                                       json={"question": "fine", "conversation_id": chat, "model": "stub\u0000"}))
        assert messages(client, token, chat) == []


def test_a_body_that_is_not_utf8_or_holds_a_lone_surrogate_is_refused(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        chat = client.post("/api/conversations", headers=bearer(token), json={}).json()["id"]
        bodies = [
            b'{"question": "caf\xe9", "conversation_id": "%s"}' % chat.encode(),  # Latin-1, not UTF-8
            b'{"question": "\xed\xa0\x80", "conversation_id": "%s"}' % chat.encode(),  # a surrogate encoded as UTF-8
            ('{"question": "high \\ud800 alone", "conversation_id": "%s"}' % chat).encode(),
            ('{"question": "low \\udc00 alone", "conversation_id": "%s"}' % chat).encode(),
        ]
        for body in bodies:
            for path in ["/api/query", "/api/stream"]:
                r = client.post(path, headers=bearer(token) | {"Content-Type": "application/json"}, content=body)
                assert_refused(r)
        assert messages(client, token, chat) == []
        # A pair of escapes is one character, and is kept.
        r = client.post("/api/query", headers=bearer(token) | {"Content-Type": "application/json"},
                        content=('{"question": "pair \\ud83d\\ude00", "conversation_id": "%s"}' % chat).encode())
        assert r.status_code == 200, r.text
        assert messages(client, token, chat)[0]["content"] == "pair \U0001F600"


def test_sign_up_refuses_a_nul_in_every_field(stack):
    with stack.client() as client:
        good = {"email": new_email(), "password": PASSWORD, "full_name": "Ann Example"}
        for field, bad in [("email", "ann\u0000@example.test"), ("password", PASSWORD + "\u0000tail"),
                           ("full_name", "Ann\u0000Example")]:
            assert_refused(client.post("/api/auth/signup", json=good | {field: bad}), field)
        r = client.post("/api/auth/signup", **raw_json('{"email": "%s", "password": "%s", "full_name": "Ann \\udfff"}'
                                                       % (new_email(), PASSWORD)))
        assert_refused(r)
        # The same account without the bad field is made: nothing half-made was left behind.
        assert client.post("/api/auth/signup", json=good).status_code == 201


def test_a_conversation_title_with_a_nul_is_refused_on_create_and_rename(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        assert_refused(client.post("/api/conversations", headers=bearer(token), json={"title": NUL}), "title")
        chat = client.post("/api/conversations", headers=bearer(token), json={"title": "Kept"}).json()["id"]
        assert_refused(client.patch(f"/api/conversations/{chat}", headers=bearer(token), json={"title": NUL}), "title")
        r = client.patch(f"/api/conversations/{chat}", headers=bearer(token) | {"Content-Type": "application/json"},
                         content=b'{"title": "\xff\xfe"}')
        assert_refused(r)
        assert client.get(f"/api/conversations/{chat}", headers=bearer(token)).json()["title"] == "Kept"


def test_a_websocket_question_with_a_nul_or_a_lone_surrogate_gets_a_validation_error(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        chat = client.post("/api/conversations", headers=bearer(token), json={}).json()["id"]
        ws = connect(stack, token)
        try:
            turn = run_turn(ws, {"question": NUL, "conversation_id": chat}, timeout=5)
            assert turn.end["type"] == "error" and turn.end["code"] == "VALIDATION", turn.end
            assert "question" in turn.end["content"] and turn.tokens == []
            # A browser's JSON.stringify writes a lone surrogate as an escape.
            turn = run_turn(ws, '{"question": "lone \\ud800", "conversation_id": "%s"}' % chat, timeout=5)
            assert turn.end["type"] == "error" and turn.end["code"] == "VALIDATION", turn.end
            assert turn.tokens == []
            # The socket stays usable.
            assert_done(run_turn(ws, {"question": "a fine one", "conversation_id": chat}))
        finally:
            ws.close()
        assert [m["content"] for m in messages(client, token, chat)][:1] == ["a fine one"]
