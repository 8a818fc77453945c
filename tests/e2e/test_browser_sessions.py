"""Browser sessions and the cross-site check, through the real stack (nginx → pool → SQLite).

A browser session keeps its access token in the page's memory and its refresh token in a
cookie no script can read; every cookie-authenticated request that changes something must come
from an allowed page and carry a header no HTML form can send."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api_client import PASSWORD, bearer, new_email, sign_up_and_in
from conftest import ALLOWED_ORIGIN, REFUSED_ORIGIN
from test_websocket import POLICY_VIOLATION, assert_done, connect, read_close, run_turn

REFRESH_COOKIE = "__Secure-privia-refresh"
# What the web client sends with every request that changes something.
PAGE = {"Origin": ALLOWED_ORIGIN, "X-Privia-CSRF": "1"}
BROWSER_SESSION = {**PAGE, "X-Privia-Session": "browser"}


def set_cookie(response: httpx.Response) -> dict[str, str]:
    """The refresh cookie a response sets: its value under "value", then its attributes."""
    found = [c for c in response.headers.get_list("set-cookie") if c.startswith(REFRESH_COOKIE + "=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    pair, *attributes = [part.strip() for part in found[0].split(";")]
    parsed = {"value": pair.split("=", 1)[1]}
    for attribute in attributes:
        name, _, value = attribute.partition("=")
        parsed[name.lower()] = value
    return parsed


def browser_sign_in(client: httpx.Client, email: str | None = None) -> tuple[str, str]:
    """Signs up, then signs in to a browser session as the web client does; (access token, refresh token)."""
    email = email or new_email()
    r = client.post("/api/auth/signup", json={"email": email, "password": PASSWORD})
    assert r.status_code in (201, 409), r.text  # 409: the account exists already
    r = client.post("/api/auth/login", json={"email": email, "password": PASSWORD}, headers=BROWSER_SESSION)
    assert r.status_code == 200, r.text
    return r.json()["access_token"], set_cookie(r)["value"]


def refresh(client: httpx.Client, token: str, headers: dict[str, str] = PAGE) -> httpx.Response:
    return client.post("/api/auth/refresh", headers={**headers, "Cookie": f"theme=dark; {REFRESH_COOKIE}={token}"})


def me(client: httpx.Client, access_token: str) -> int:
    return client.get("/api/auth/me", headers=bearer(access_token)).status_code


# ---------------------------------------------------------------------------
# Signing in, refreshing, signing out
# ---------------------------------------------------------------------------


def test_a_browser_sign_in_keeps_the_refresh_token_in_a_strict_http_only_cookie(stack):
    with stack.client() as client:
        email = new_email()
        assert client.post("/api/auth/signup", json={"email": email, "password": PASSWORD}).status_code == 201
        r = client.post("/api/auth/login", json={"email": email, "password": PASSWORD}, headers=BROWSER_SESSION)
        assert r.status_code == 200, r.text
        cookie = set_cookie(r)
        assert cookie == {"value": cookie["value"], "max-age": str(30 * 86400), "path": "/api/auth",
                          "httponly": "", "secure": "", "samesite": "Strict"}
        assert len(cookie["value"]) >= 43 and cookie["value"] not in r.text
        assert r.headers["cache-control"] == "no-store"
        body = r.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 900 and body["user"]["email"] == email
        assert me(client, body["access_token"]) == 200


def test_refresh_tokens_are_stored_hashed(stack):
    with stack.client() as client:
        _, token = browser_sign_in(client)
    with sqlite3.connect(f"file:{stack.data_dir / 'privia.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT * FROM refresh_tokens").fetchall()
    assert rows and not any(token in str(value) for row in rows for value in row)


def test_a_refresh_rotates_the_cookie_and_gives_a_new_access_token(stack):
    with stack.client() as client:
        access, first = browser_sign_in(client)
        r = refresh(client, first)
        assert r.status_code == 200, r.text
        second = set_cookie(r)
        assert second["value"] != first and second["httponly"] == "" and second["path"] == "/api/auth"
        assert r.json()["access_token"] != access and me(client, r.json()["access_token"]) == 200
        assert refresh(client, second["value"]).status_code == 200


def test_a_rotated_token_presented_again_ends_the_whole_family(stack):
    with stack.client() as client:
        access, first = browser_sign_in(client)
        r = refresh(client, first)
        second = set_cookie(r)["value"]
        r = refresh(client, second)
        third, latest_access = set_cookie(r)["value"], r.json()["access_token"]

        stolen = refresh(client, first)
        assert stolen.status_code == 401 and stolen.json()["code"] == "AUTH", stolen.text
        assert set_cookie(stolen)["value"] == "" and set_cookie(stolen)["max-age"] == "0"
        assert refresh(client, third).status_code == 401, "the owner's newest cookie ends with the family"
        assert me(client, access) == 401 and me(client, latest_access) == 401


def test_two_tabs_refreshing_with_the_same_cookie_at_once_both_keep_the_session(stack):
    with stack.client() as client:
        _, token = browser_sign_in(client)
    start = threading.Barrier(2)

    def tab(_: int) -> httpx.Response:
        with stack.client() as own:
            start.wait()
            return refresh(own, token)

    with ThreadPoolExecutor(2) as tabs:
        answers = list(tabs.map(tab, range(2)))
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    cookies = {set_cookie(a)["value"] for a in answers}
    assert len(cookies) == 1, "both tabs store the same successor"
    with stack.client() as client:
        assert all(me(client, a.json()["access_token"]) == 200 for a in answers)
        assert refresh(client, cookies.pop()).status_code == 200


def test_signing_out_ends_the_session_and_clears_the_cookie(stack):
    with stack.client() as client:
        access, token = browser_sign_in(client)
        r = client.post("/api/auth/logout", headers={**PAGE, "Cookie": f"{REFRESH_COOKIE}={token}"})
        assert r.status_code == 204
        cleared = set_cookie(r)
        assert cleared["value"] == "" and cleared["max-age"] == "0" and cleared["path"] == "/api/auth"
        assert refresh(client, token).status_code == 401
        assert me(client, access) == 401


def test_signing_out_everywhere_refuses_every_earlier_token_of_the_user(stack):
    with stack.client() as client:
        email = new_email()
        api_token, _ = sign_up_and_in(client, email)
        laptop_access, laptop_refresh = browser_sign_in(client, email)
        phone_access, phone_refresh = browser_sign_in(client, email)
        other_access, _ = browser_sign_in(client)

        r = client.post("/api/auth/logout-all", headers=bearer(phone_access))
        assert r.status_code == 204 and set_cookie(r)["value"] == ""
        for token in (api_token, laptop_access, phone_access):
            assert me(client, token) == 401
            assert client.get("/api/conversations", headers=bearer(token)).status_code == 401
        assert refresh(client, laptop_refresh).status_code == 401
        assert refresh(client, phone_refresh).status_code == 401
        assert me(client, other_access) == 200, "another user is untouched"

        fresh, _ = browser_sign_in(client, email)
        assert me(client, fresh) == 200, "signing in again right away works"
    ws = connect(stack, api_token)
    try:
        assert read_close(ws)[0] == POLICY_VIOLATION, "the relay refuses an old token too"
    finally:
        ws.close()


def test_a_browser_session_opens_the_chat_socket_with_its_access_token_in_the_query(stack):
    with stack.client() as client:
        access, token = browser_sign_in(client)
    ws = connect(stack, access, via="query", origin=ALLOWED_ORIGIN)
    try:
        assert ws.getstatus() == 101
        assert_done(run_turn(ws, {"question": "hello from a browser session"}))
    finally:
        ws.close()
    with stack.client() as client:
        assert client.post("/api/auth/logout", headers={**PAGE, "Cookie": f"{REFRESH_COOKIE}={token}"}).status_code == 204
    ws = connect(stack, access, via="query", origin=ALLOWED_ORIGIN)
    try:
        assert read_close(ws)[0] == POLICY_VIOLATION
    finally:
        ws.close()


# ---------------------------------------------------------------------------
# The cross-site check
# ---------------------------------------------------------------------------


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"theme=dark; auth-token={token}"}


def test_a_cross_site_form_posting_with_the_cookie_is_refused(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        forged_query = client.post("/api/query", content=b'{"question": "leak"}',
                                   headers={**cookie(token), "Origin": REFUSED_ORIGIN, "Content-Type": "text/plain"})
        forged_create = client.post("/api/conversations", data={"title": "planted"},
                                    headers={**cookie(token), "Origin": REFUSED_ORIGIN})
        for r in (forged_query, forged_create):
            assert r.status_code == 403, r.text
            assert r.headers["content-type"].startswith("application/json")
            assert r.json()["code"] == "CSRF" and r.json()["detail"].startswith("Cross-site request refused")
        assert client.get("/api/conversations", headers=bearer(token)).json() == [], "nothing was written"


def test_the_same_requests_from_an_allowed_page_with_the_header_are_accepted(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        r = client.post("/api/query", content=b'{"question": "hello"}',
                        headers={**cookie(token), **PAGE, "Content-Type": "text/plain"})
        assert r.status_code == 200, r.text
        r = client.post("/api/conversations", headers={**cookie(token), **PAGE})
        assert r.status_code == 201, r.text
        # The web client nginx serves itself: the browser says same-origin.
        same_origin = {**cookie(token), "Sec-Fetch-Site": "same-origin", "X-Requested-With": "XMLHttpRequest"}
        assert client.delete(f"/api/conversations/{r.json()['id']}", headers=same_origin).status_code == 204


@pytest.mark.parametrize("headers", [
    {"Origin": ALLOWED_ORIGIN},                       # no header: what a form on an allowed page could send
    {"X-Privia-CSRF": "1"},                           # no Origin and no Sec-Fetch-Site
    {"Origin": REFUSED_ORIGIN, "X-Privia-CSRF": "1"},
    {"Sec-Fetch-Site": "cross-site", "X-Privia-CSRF": "1"},
], ids=["allowed-origin-without-header", "header-without-origin", "foreign-origin-with-header", "cross-site-with-header"])
def test_each_half_of_the_check_is_needed(stack, headers):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        r = client.post("/api/conversations", json={}, headers={**cookie(token), **headers})
        assert r.status_code == 403 and r.json()["code"] == "CSRF", r.text
        _, refresh_token = browser_sign_in(client)
        r = refresh(client, refresh_token, headers=headers)
        assert r.status_code == 403 and r.json()["code"] == "CSRF", r.text


def test_bearer_requests_are_not_affected(stack):
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        h = {**bearer(token), "Origin": REFUSED_ORIGIN}
        created = client.post("/api/conversations", headers=h)
        assert created.status_code == 201
        r = client.post("/api/query", json={"question": "hi", "conversation_id": created.json()["id"]}, headers=h)
        assert r.status_code == 200
        assert client.delete(f"/api/conversations/{created.json()['id']}", headers=h).status_code == 204
        assert client.post("/api/auth/logout", headers=h).status_code == 204


def test_a_foreign_origins_preflight_gets_no_permission_for_the_header(stack):
    def preflight(origin: str) -> httpx.Response:
        with stack.client() as client:
            return client.options("/api/auth/refresh", headers={
                "Origin": origin, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-privia-csrf, x-privia-session, content-type"})

    allowed = preflight(ALLOWED_ORIGIN).headers["access-control-allow-headers"].lower()
    assert "x-privia-csrf" in allowed and "x-privia-session" in allowed
    refused = preflight(REFUSED_ORIGIN)
    assert "access-control-allow-headers" not in refused.headers
    assert "access-control-allow-origin" not in refused.headers


def test_privias_frontend_calls_work_unchanged(stack):
    """The calls of Privia's web frontend (lib/api/*.ts, hooks/useChatSSE.ts): a multipart login,
    then Bearer on every call with Content-Type: application/json, from its own origin."""
    frontend = {"Origin": ALLOWED_ORIGIN, "Content-Type": "application/json"}
    with stack.client() as client:
        email = new_email()
        r = client.post("/api/auth/signup", json={"email": email, "password": PASSWORD, "full_name": email},
                        headers={"Origin": ALLOWED_ORIGIN})
        assert r.status_code == 201
        r = client.post("/api/auth/login", files={"username": (None, email), "password": (None, PASSWORD)},
                        headers={"Origin": ALLOWED_ORIGIN})
        assert r.status_code == 200 and "set-cookie" not in r.headers
        token = r.json()["access_token"]
        h = {**frontend, **bearer(token)}
        # storeAuth() also writes the token to a script-readable auth-token cookie, which goes along.
        h_cookie = {**h, **cookie(token)}
        assert client.get("/api/auth/me", headers=h).status_code == 200
        cid = client.post("/api/conversations", content=b"{}", headers=h_cookie).json()["id"]
        assert client.get("/api/conversations", headers=h_cookie).status_code == 200
        assert client.post("/api/query", json={"question": "hi", "conversation_id": cid}, headers=h_cookie).status_code == 200
        with client.stream("POST", "/api/stream", json={"question": "again", "conversation_id": cid}, headers=h_cookie) as s:
            assert s.status_code == 200 and "event: done" in "".join(s.iter_text())
        assert client.patch(f"/api/conversations/{cid}", json={"title": "Renamed"}, headers=h_cookie).status_code == 200
        assert client.get(f"/api/conversations/{cid}", headers=h_cookie).json()["title"] == "Renamed"
        assert client.delete(f"/api/conversations/{cid}", headers=h_cookie).status_code == 204
