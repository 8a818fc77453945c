"""Privia's API through the real stack: nginx (HTTPS) → FastCGI pool → SQLite."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from api_client import PASSWORD, FrontendSSE, bearer, new_email, sign_up_and_in

STUB_START = "No language model is connected"


def test_signup_validates_and_refuses_a_taken_email_case_insensitively(stack):
    with stack.client() as client:
        email = new_email()
        r = client.post("/api/auth/signup", json={"email": email.upper(), "password": PASSWORD})
        assert r.status_code == 201
        assert r.json() == {"id": r.json()["id"], "email": email.lower(), "full_name": None}
        r = client.post("/api/auth/signup", json={"email": email, "password": PASSWORD})
        assert r.status_code == 409 and r.json()["detail"] == "Email already registered"
        assert client.post("/api/auth/signup", json={"email": "nope", "password": PASSWORD}).status_code == 422
        r = client.post("/api/auth/signup", json={"email": new_email(), "password": "short"})
        assert r.status_code == 422 and r.json()["code"] == "VALIDATION"
        r = client.post("/api/auth/signup", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and "detail" in r.json()


def test_login_with_the_frontends_multipart_form_and_urlencoded(stack):
    with stack.client() as client:
        email = new_email()
        token, user = sign_up_and_in(client, email)
        assert user == {"id": user["id"], "email": email, "full_name": "E2E", "role": "member"}
        r = client.post("/api/auth/login", data={"username": email, "password": PASSWORD})
        assert r.status_code == 200 and r.json()["token_type"] == "bearer"
        r = client.get("/api/auth/me", headers=bearer(token))
        assert r.status_code == 200 and r.json()["email"] == email


def test_a_wrong_password_and_an_unknown_email_look_the_same(stack):
    with stack.client() as client:
        email = new_email()
        sign_up_and_in(client, email)
        for username, password in [(email, "wrong password!"), (new_email(), PASSWORD)]:
            r = client.post("/api/auth/login", data={"username": username, "password": password})
            assert r.status_code == 400
            assert r.json()["detail"] == "Invalid email or password"


def test_cookie_auth_and_logout_revoking_the_token(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        r = client.get("/api/conversations", headers={"Cookie": f"auth-token={token}"})
        assert r.status_code == 200
        assert client.post("/api/auth/logout", headers=bearer(token)).status_code == 204
        r = client.get("/api/auth/me", headers=bearer(token))
        assert r.status_code == 401 and r.json()["code"] == "AUTH"
        assert client.get("/api/conversations").status_code == 401


def test_oauth_exchange_is_off_by_default(stack):
    with stack.client() as client:
        body = {"provider": "github", "provider_account_id": "1", "email": new_email()}
        assert client.post("/api/auth/oauth", json=body).status_code == 404


def test_conversation_lifecycle_and_cascade(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        h = bearer(token)
        first = client.post("/api/conversations", headers=h)
        assert first.status_code == 201 and first.json()["status"] == "empty"
        again = client.post("/api/conversations", headers=h, json={"title": "x"})
        assert again.json()["id"] == first.json()["id"], "one empty conversation per user"
        cid = first.json()["id"]

        r = client.post("/api/query", headers=h, json={"question": "How do I keep notes private?", "conversation_id": cid})
        assert r.status_code == 200
        body = r.json()
        assert body["conversation_id"] == cid and body["mode"] == "stub" and body["sources"] == []
        assert body["answer"].startswith(STUB_START)

        detail = client.get(f"/api/conversations/{cid}", headers=h).json()
        assert detail["status"] == "active"
        assert detail["title"] == "How do I keep notes private?"
        assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
        assert all(m["timestamp"].endswith("Z") for m in detail["messages"])

        listed = client.get("/api/conversations", headers=h).json()
        assert listed[0]["id"] == cid and listed[0]["message_count"] == 2

        r = client.patch(f"/api/conversations/{cid}", headers=h, json={"title": "  Notes  "})
        assert r.status_code == 200 and r.json()["title"] == "Notes"
        assert client.patch(f"/api/conversations/{cid}", headers=h, json={"title": ""}).status_code == 422

        assert client.delete(f"/api/conversations/{cid}", headers=h).status_code == 204
        assert client.get(f"/api/conversations/{cid}", headers=h).status_code == 404
        assert client.get("/api/conversations", headers=h).json() == []


def test_every_foreign_id_is_404_exactly_like_a_missing_one(stack):
    with stack.client() as client:
        owner, _ = sign_up_and_in(client)
        stranger, _ = sign_up_and_in(client)
        cid = client.post("/api/query", headers=bearer(owner), json={"question": "mine"}).json()["conversation_id"]
        missing = str(uuid.uuid4())
        for target in (cid, missing):
            for method, kwargs in [("GET", {}), ("PATCH", {"json": {"title": "t"}}), ("DELETE", {})]:
                r = client.request(method, f"/api/conversations/{target}", headers=bearer(stranger), **kwargs)
                assert r.status_code == 404 and r.json()["detail"] == "Conversation not found", (method, target)
            for path in ("/api/query", "/api/stream"):
                r = client.post(path, headers=bearer(stranger), json={"question": "hi", "conversation_id": target})
                assert r.status_code == 404, path
        assert client.get(f"/api/conversations/{cid}", headers=bearer(owner)).status_code == 200


def test_paging_the_conversation_list_with_a_cursor(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)

    def ask(n: int) -> str:
        with stack.client() as own:
            return own.post("/api/query", headers=bearer(token), json={"question": f"q{n}"}).json()["conversation_id"]

    # Five turns at once: one after the other, the stub's pace made this test the suite's slowest.
    with ThreadPoolExecutor(max_workers=5) as pool:
        ids = list(pool.map(ask, range(5)))
    with stack.client() as client:
        listed = client.get("/api/conversations", headers=bearer(token)).json()
        everything = [c["id"] for c in listed]
        assert sorted(everything) == sorted(ids)
        activity = [c["updated_at"] for c in listed]
        assert activity == sorted(activity, reverse=True), "newest activity first"
        seen, cursor = [], None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            r = client.get("/api/conversations", headers=bearer(token), params=params)
            seen += [c["id"] for c in r.json()]
            cursor = r.headers.get("x-next-cursor")
            if not cursor:
                break
        assert seen == everything


def test_sse_stream_as_the_frontend_parses_it(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        parser = FrontendSSE()
        with client.stream("POST", "/api/stream", headers=bearer(token), json={"question": "Stream me an answer"}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            assert "no-cache" in r.headers["cache-control"]
            for chunk in r.iter_text():
                parser.feed(chunk)
        assert parser.answer.startswith(STUB_START)
        assert parser.token_events > 10, "tokens arrive one by one"
        assert parser.other_events == [] and parser.error is None
        done = parser.done
        assert done and done["mode"] == "stub" and done["sources"] == [] and done["status"] == "complete"
        detail = client.get(f"/api/conversations/{done['conversation_id']}", headers=bearer(token)).json()
        assert detail["messages"][-1]["id"] == done["message_id"]
        assert detail["messages"][-1]["content"] == parser.answer.strip()


def test_errors_before_the_stream_are_plain_json(stack):
    with stack.client() as client:
        assert client.post("/api/stream", json={"question": "hi"}).status_code == 401
        token, _ = sign_up_and_in(client)
        r = client.post("/api/stream", headers=bearer(token), json={"question": "  "})
        assert r.status_code == 422 and r.json()["detail"] == "Question is required"
