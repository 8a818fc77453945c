"""Stopping a generation frees its thread and keeps the partial answer; a database made by
Privia's Python backend is adopted in place."""

from __future__ import annotations

import hashlib
import sqlite3
import time

from api_client import FrontendSSE, bearer, sign_up_and_in
from conftest import REPO


def last_message(client, token):
    conversations = client.get("/api/conversations", headers=bearer(token)).json()
    detail = client.get(f"/api/conversations/{conversations[0]['id']}", headers=bearer(token)).json()
    return detail["messages"][-1]


def test_an_sse_client_leaving_stops_the_generation_and_frees_the_thread(make_stack):
    # Two threads in all: if a stopped stream kept its thread, the third stream would hang.
    stack = make_stack({"PRIVIA_WORKERS": "1", "PRIVIA_THREADS": "2", "PRIVIA_STUB_DELAY_MS": "100"}, name="stop")
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        for attempt in range(4):
            parser = FrontendSSE()
            with client.stream("POST", "/api/stream", headers=bearer(token), json={"question": f"long answer {attempt}"}) as r:
                assert r.status_code == 200
                for chunk in r.iter_text():
                    parser.feed(chunk)
                    if parser.token_events >= 3:
                        break
            left_at = time.monotonic()
            # The worker notices within a poll interval and commits the partial answer as stopped.
            deadline = left_at + 2.0
            while True:
                message = last_message(client, token)
                if message["role"] == "assistant":
                    break
                assert time.monotonic() < deadline, "the stopped answer was not persisted"
                time.sleep(0.05)
            assert message["status"] == "stopped", message
            assert message["content"] and parser.answer.strip().startswith(message["content"][: len(parser.answer.strip())])
            assert len(message["content"]) < 150, "the generation did not run to the end"
        started = time.monotonic()
        assert client.get("/api/health").status_code == 200
        assert time.monotonic() - started < 1.0


PRIVIA_SCHEMA = (REPO / "tests" / "fixtures" / "privia-alembic-b4e2c3d5f6a7.sql").read_text()


def privia_hash(password: str, salt: str = "5f4dcc3b5aa765d61d8327deb882cf99") -> str:
    """Privia's stored format: hex salt text used as bytes, PBKDF2-SHA256, 100,000 rounds."""
    return salt + "$" + hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 100_000).hex()


def test_a_privia_database_is_adopted_in_place(make_stack):
    stack = make_stack(start=False, name="adopt")
    db = sqlite3.connect(stack.data_dir / "privia.db")
    db.executescript(PRIVIA_SCHEMA)
    db.execute("INSERT INTO users VALUES ('7b1e0a52-0000-4000-8000-000000000001', 'Legacy.User@example.test', 'Legacy',"
               " ?, 'member', NULL, NULL, NULL)", (privia_hash("old password 1"),))
    db.execute("INSERT INTO users VALUES ('7b1e0a52-0000-4000-8000-000000000002', 'oauth@example.test', NULL, '',"
               " 'member', 'github', '42', NULL)")
    db.execute("INSERT INTO conversations VALUES ('c0000000-0000-4000-8000-000000000001',"
               " '7b1e0a52-0000-4000-8000-000000000001', 'Kept', '2026-02-08 12:57:25.194236',"
               " '2026-02-08 12:58:00.000000', 'active')")
    for n, (role, content) in enumerate([("user", "Do you remember me?"), ("assistant", "I do.")]):
        db.execute("INSERT INTO messages VALUES (?, 'c0000000-0000-4000-8000-000000000001', ?, ?, ?)",
                   (f"m000000{n}-0000-4000-8000-000000000000", role, content, f"2026-02-08 12:57:2{6 + n}.000000"))
    db.commit()
    db.close()

    stack.start()
    with stack.client() as client:
        r = client.post("/api/auth/login", files={"username": (None, "legacy.user@example.test"), "password": (None, "old password 1")})
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        assert r.json()["user"]["full_name"] == "Legacy"
        conversations = client.get("/api/conversations", headers=bearer(token)).json()
        assert [c["title"] for c in conversations] == ["Kept"]
        assert conversations[0]["created_at"] == "2026-02-08T12:57:25.194236Z"
        detail = client.get(f"/api/conversations/{conversations[0]['id']}", headers=bearer(token)).json()
        assert [m["content"] for m in detail["messages"]] == ["Do you remember me?", "I do."]
        # An OAuth-only account has no password: it cannot sign in with one.
        r = client.post("/api/auth/login", data={"username": "oauth@example.test", "password": "anything at all"})
        assert r.status_code == 400
        # The legacy hash was replaced at sign-in, and the old password still works.
        assert client.post("/api/auth/login", data={"username": "legacy.user@example.test", "password": "old password 1"}).status_code == 200

    db = sqlite3.connect(stack.data_dir / "privia.db")
    stored = db.execute("SELECT password_hash FROM users WHERE email = 'Legacy.User@example.test'").fetchone()[0]
    applied = [row[0] for row in db.execute("SELECT name FROM schema_migrations ORDER BY version")]
    db.close()
    assert stored.startswith("pbkdf2_sha256$600000$")
    assert applied[:2] == ["0001_privia_schema.sql", "0002_privia_swift.sql"]
