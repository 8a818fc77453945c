"""A full disk, for real: the stack's data directory is a small tmpfs, filled with a file
until the kernel says ENOSPC.

Writes through nginx are refused with 507 STORAGE_FULL (an `error` event with that code once
a stream has started), `/api/health` says `degraded`, reads go on, and once the filler is
deleted writes work again and health is ok, without a restart.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
import websocket

from api_client import PASSWORD, FrontendSSE, bearer, new_email, sign_up_and_in
from conftest import ALLOWED_ORIGIN, Stack, _require_binaries

# Room for the stack's files (well under 1 MiB) and far above the 8 MiB under which
# health reports the disk as nearly full.
TMPFS_SIZE = "32m"
STORAGE_FULL = {"detail": "The server is out of storage space; try again later", "code": "STORAGE_FULL"}


@contextlib.contextmanager
def stack_on_a_small_disk(extra_env: dict[str, str] | None = None):
    """A stack whose data directory is a tmpfs of TMPFS_SIZE; its output goes elsewhere, so a
    full disk does not cut the log a failing test prints. Unmounted however the test ends."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    _require_binaries()
    stack = Stack(extra_env, name="disk-full")
    log_dir = Path(tempfile.mkdtemp(prefix="privia-e2e-disk-full-log-"))
    stack.log_path = log_dir / "stack.out"
    mounted = False
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0755", "tmpfs", str(stack.data_dir)],
                       check=True)
        mounted = True
        stack.start()
        try:
            yield stack
        finally:
            (stack.data_dir / "filler").unlink(missing_ok=True)  # room to shut down as usual
            stack.stop()
    finally:
        if mounted and subprocess.run(["umount", str(stack.data_dir)]).returncode != 0:
            subprocess.run(["umount", "--lazy", str(stack.data_dir)], check=True)
        stack.remove()
        shutil.rmtree(log_dir, ignore_errors=True)


def fill(directory: Path) -> Path:
    """Writes a file until the filesystem has not one byte left for it."""
    filler = directory / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            while True:
                try:
                    os.write(descriptor, b"\0" * size)
                except OSError as error:
                    assert error.errno == errno.ENOSPC, error
                    break
    finally:
        os.close(descriptor)
    assert os.statvfs(directory).f_bavail == 0
    return filler


def health(client) -> tuple[int, dict]:
    r = client.get("/api/health")
    return r.status_code, r.json()


def websocket_turn(stack: Stack, token: str, question: str) -> dict:
    """Asks over /api/ws/chat through nginx; returns the turn's last frame (`done` or `error`)."""
    ws = websocket.create_connection(
        f"{stack.ws_url}/api/ws/chat?token={quote(token, safe='')}", origin=ALLOWED_ORIGIN,
        sslopt={"ca_certs": stack.ca_file}, timeout=15,
    )
    try:
        ws.send(json.dumps({"question": question}))
        while True:
            frame = json.loads(ws.recv())
            if frame["type"] in ("done", "error"):
                return frame
    finally:
        ws.close()


def test_a_full_disk_refuses_writes_with_507_keeps_reads_and_recovers_by_itself():
    with stack_on_a_small_disk() as stack, stack.client() as client:
        token, user = sign_up_and_in(client)
        assert health(client)[0] == 200

        # Full before any request is authenticated: the first one maps the accounts counter's
        # page, which on a full disk once killed the worker (SIGBUS) instead of reading.
        filler = fill(stack.data_dir)

        r = client.get("/api/auth/me", headers=bearer(token))
        assert (r.status_code, r.json()["id"]) == (200, user["id"]), r.text
        r = client.post("/api/auth/signup", json={"email": new_email(), "password": PASSWORD})
        assert (r.status_code, r.json()) == (507, STORAGE_FULL)
        r = client.post("/api/conversations", headers=bearer(token), json={})
        assert (r.status_code, r.json()) == (507, STORAGE_FULL)
        r = client.post("/api/stream", headers=bearer(token), json={"question": "Anything new?"})
        assert (r.status_code, r.json()) == (507, STORAGE_FULL)
        # A body past nginx's default 16k buffer reaches the pool too, instead of nginx failing
        # to write it to a temp file (the pool then refuses it as it would any oversized title).
        r = client.post("/api/conversations", headers=bearer(token), json={"title": "t" * 100_000})
        assert r.status_code == 422 and r.json()["code"] == "VALIDATION"
        frame = websocket_turn(stack, token, "Anything new?")
        assert (frame["type"], frame.get("code")) == ("error", "STORAGE_FULL"), frame
        status, degraded = health(client)
        assert (status, degraded["status"]) == (503, "degraded")
        listed = client.get("/api/conversations", headers=bearer(token))
        assert (listed.status_code, listed.json()) == (200, [])

        filler.unlink()

        assert client.post("/api/auth/signup", json={"email": new_email(), "password": PASSWORD}).status_code == 201
        assert client.post("/api/conversations", headers=bearer(token), json={}).status_code == 201
        done = websocket_turn(stack, token, "Remember this")
        assert done["type"] == "done"
        status, healthy = health(client)
        assert (status, healthy["status"]) == (200, "ok")
        assert sorted(healthy) == sorted(degraded)

        # Full again: what was written reads back whole, and room comes back once more.
        filler = fill(stack.data_dir)
        assert client.post("/api/conversations", headers=bearer(token), json={}).status_code == 507
        r = client.get(f"/api/conversations/{done['conversation_id']}", headers=bearer(token))
        assert r.status_code == 200
        messages = r.json()["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[0]["content"] == "Remember this" and messages[1]["id"] == done["message_id"]
        assert health(client)[0] == 503
        filler.unlink()
        assert client.post("/api/conversations", headers=bearer(token), json={}).status_code == 201
        assert health(client)[0] == 200


def test_an_answer_that_meets_a_full_disk_ends_the_stream_with_a_storage_full_event():
    # A slow stub, so the disk fills while the answer streams, after the prompt was stored.
    with stack_on_a_small_disk({"PRIVIA_STUB_DELAY_MS": "60"}) as stack, stack.client() as client:
        token, _ = sign_up_and_in(client)
        sse = FrontendSSE()
        with client.stream("POST", "/api/stream", headers=bearer(token), json={"question": "Stream me an answer"}) as r:
            assert r.status_code == 200
            filler = None
            for chunk in r.iter_text():
                sse.feed(chunk)
                if sse.token_events and filler is None:
                    filler = fill(stack.data_dir)
        assert sse.done is None
        assert sse.error is not None and sse.error["code"] == "STORAGE_FULL", sse.error
        assert sse.error["error"] == STORAGE_FULL["detail"]
        # The question was stored before the answer began; the answer could not be.
        messages = client.get(f"/api/conversations/{sse.error['conversation_id']}", headers=bearer(token)).json()["messages"]
        assert [m["role"] for m in messages] == ["user"]
        assert health(client)[0] == 503

        filler.unlink()

        r = client.post("/api/query", headers=bearer(token),
                        json={"question": "Again, please", "conversation_id": sse.error["conversation_id"]})
        assert r.status_code == 200 and r.json()["status"] == "complete"
        assert health(client)[0] == 200
