"""The pool's process model seen from a client: a graceful stop lets a slow request finish,
a reload replaces every worker without failing a request, an answer whose worker (or whole
pool) is killed mid-stream is kept as far as it was saved and marked interrupted, health
reports a database that cannot be written, and a peer that keeps its connection open does not
keep a thread."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import struct
import subprocess
import threading
import time
from pathlib import Path

import httpx

from api_client import FrontendSSE, bearer, sign_up_and_in

STUB_REPLY = (
    "No language model is connected to this Privia server yet, so this is a placeholder answer. "
    "An operator can point it at an OpenAI-compatible provider such as OpenRouter, Ollama, vLLM or llama.cpp."
)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_sigterm_lets_a_slow_stream_finish_then_the_pool_exits(make_stack):
    stack = make_stack({"PRIVIA_STUB_DELAY_MS": "50", "PRIVIA_GRACE_SECONDS": "20"}, name="term")
    master = stack.fcgi_master_pid()
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        parser = FrontendSSE()
        with client.stream("POST", "/api/stream", headers=bearer(token), json={"question": "take your time"}) as r:
            signalled = False
            for chunk in r.iter_text():
                parser.feed(chunk)
                if parser.token_events >= 2 and not signalled:
                    os.kill(master, signal.SIGTERM)
                    signalled = True
        assert signalled
        assert parser.done is not None and parser.done["status"] == "complete", "the in-flight stream was cut"
        assert parser.answer.startswith("No language model is connected")
    wait_for(lambda: not pid_alive(master), 10, "the pool master did not exit after draining")
    # The launcher then stops the rest of the stack, as for any of its processes that exits,
    # and says so with status 1. Waiting for that, rather than racing it with a SIGTERM of
    # our own, keeps the test from depending on which of the two comes first.
    assert stack.wait_for_exit(stack.family()) == 1
    assert "fcgi exited (status 0); stopping the stack" in stack.log_tail()


def test_sighup_replaces_every_worker_without_failing_a_request(make_stack):
    stack = make_stack({"PRIVIA_WORKERS": "2", "PRIVIA_STUB_DELAY_MS": "50"}, name="hup")
    old_workers = set(stack.fcgi_worker_pids())
    assert len(old_workers) == 2
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
    statuses: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def hammer():
        with stack.client() as client:
            while not stop.is_set():
                try:
                    statuses.append(client.get("/api/conversations", headers=bearer(token)).status_code)
                except Exception as error:  # a refused or reset request is exactly the failure under test
                    failures.append(repr(error))

    def stream():
        with stack.client() as client:
            parser = FrontendSSE()
            with client.stream("POST", "/api/stream", headers=bearer(token), json={"question": "across a reload"}) as r:
                for chunk in r.iter_text():
                    parser.feed(chunk)
            if not (parser.done and parser.done["status"] == "complete"):
                failures.append(f"stream across the reload did not complete: {parser.done}")

    threads = [threading.Thread(target=hammer) for _ in range(3)] + [threading.Thread(target=stream)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    os.kill(stack.fcgi_master_pid(), signal.SIGHUP)
    new_workers = wait_for(lambda: (lambda now: now if len(now) == 2 and not now & old_workers else None)(set(stack.fcgi_worker_pids())),
                           10, "the old workers were not replaced")
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert statuses and set(statuses) == {200}, f"{len(statuses)} requests, statuses {set(statuses)}"
    assert len(new_workers) == 2


def stream_until(client: httpx.Client, headers: dict, body: dict, tokens: int, then) -> FrontendSSE:
    """Streams a turn and calls `then()` once `tokens` token events have arrived; reads on until
    the stream ends, however it ends."""
    parser = FrontendSSE()
    try:
        with client.stream("POST", "/api/stream", headers=headers, json=body) as r:
            assert r.status_code == 200
            for chunk in r.iter_text():
                parser.feed(chunk)
                if parser.token_events >= tokens and then:
                    then()
                    then = None
    except httpx.HTTPError:  # the response is cut short: what the caller is doing
        pass
    assert then is None, f"the stream ended after {parser.token_events} tokens"
    return parser


def interrupted_answer(client: httpx.Client, token: str) -> tuple[str, dict]:
    """The user's one conversation once its answer is stored (the master does it as it reaps
    the worker): its id and that answer."""
    [conversation] = client.get("/api/conversations", headers=bearer(token)).json()
    messages = wait_for(lambda: (lambda m: m if len(m) == 2 else None)(
        client.get(f"/api/conversations/{conversation['id']}", headers=bearer(token)).json()["messages"]),
        10, "the answer in progress was not stored")
    return conversation["id"], messages[1]


# The stub at 100 ms a token takes about 3.2 s to answer. At 15 tokens (1.5 s at least) the
# answer has been saved once (about a second into the turn) and half of it is still to come.
SLOW_STUB = {"PRIVIA_WORKERS": "1", "PRIVIA_STUB_DELAY_MS": "100"}
TOKENS_BEFORE_THE_KILL = 15


def test_a_worker_killed_mid_answer_leaves_it_interrupted_and_the_conversation_goes_on(make_stack):
    """SIGKILL (a crash, the OOM killer) gives a worker no chance to store its answer. What it
    had saved as it streamed is kept: the master marks it `interrupted` as it replaces the
    worker, a repeated idempotency key replays it, and the conversation goes on."""
    stack = make_stack(SLOW_STUB, name="killed")
    [worker] = stack.fcgi_worker_pids()
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        keyed = {**bearer(token), "Idempotency-Key": "killed-mid-answer"}
        parser = stream_until(client, keyed, {"question": "a long answer, please"}, TOKENS_BEFORE_THE_KILL,
                              lambda: os.kill(worker, signal.SIGKILL))
        assert parser.done is None and parser.token_events < len(STUB_REPLY.split())
        wait_for(lambda: (lambda now: len(now) == 1 and worker not in now)(stack.fcgi_worker_pids()), 10,
                 "the killed worker was not replaced")

        conversation_id, answer = interrupted_answer(client, token)
        assert answer["role"] == "assistant" and answer["status"] == "interrupted"
        saved = answer["content"]
        assert STUB_REPLY.startswith(saved) and len(saved.split()) >= 5 and len(saved) < len(STUB_REPLY.strip()), saved

        replay = client.post("/api/query", headers=keyed, json={"question": "a long answer, please"})
        assert replay.status_code == 200, replay.text
        assert (replay.json()["status"], replay.json()["answer"], replay.json()["message_id"]) == ("interrupted", saved, answer["id"])
        streamed = FrontendSSE()
        with client.stream("POST", "/api/stream", headers=keyed, json={"question": "a long answer, please"}) as r:
            for chunk in r.iter_text():
                streamed.feed(chunk)
        assert streamed.answer == saved and streamed.done and streamed.done["status"] == "interrupted", streamed.done

        regenerated = client.post("/api/query", headers=bearer(token),
                                  json={"action": "regenerate", "conversation_id": conversation_id})
        assert regenerated.status_code == 200 and regenerated.json()["status"] == "complete", regenerated.text
        assert regenerated.json()["answer"] == STUB_REPLY
        following = client.post("/api/query", headers=bearer(token), json={"question": "and then?", "conversation_id": conversation_id})
        assert following.status_code == 200 and following.json()["status"] == "complete", following.text
        messages = client.get(f"/api/conversations/{conversation_id}", headers=bearer(token)).json()["messages"]
        assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("assistant", "complete")] * 2


def test_answers_in_progress_when_the_whole_pool_died_are_interrupted_at_its_next_start(make_stack):
    """When master and worker die together (a machine's OOM killer, a power cut), nobody is
    left to see the worker go: the next master finds the answer in progress whose process is
    gone and marks it interrupted before it serves."""
    stack = make_stack(SLOW_STUB, name="pool-died")
    master = stack.fcgi_master_pid()
    [worker] = stack.fcgi_worker_pids()
    family = stack.family()

    def kill_the_pool():
        os.kill(master, signal.SIGSTOP)  # so it cannot reap the worker in between
        os.kill(worker, signal.SIGKILL)
        os.kill(master, signal.SIGKILL)

    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        stream_until(client, bearer(token), {"question": "a long answer, please"}, TOKENS_BEFORE_THE_KILL, kill_the_pool)
    assert stack.wait_for_exit(family) == 1  # the launcher stops the stack when the pool dies
    db = sqlite3.connect(stack.data_dir / "privia.db")
    try:
        assert db.execute("SELECT count(*) FROM running_turns").fetchone() == (1,), "no answer in progress was left"
    finally:
        db.close()

    stack.start()
    with stack.client() as client:
        _, answer = interrupted_answer(client, token)
        assert answer["status"] == "interrupted"
        assert STUB_REPLY.startswith(answer["content"]) and len(answer["content"].split()) >= 5, answer


def test_health_is_degraded_while_the_database_cannot_be_written(stack):
    holder = sqlite3.connect(stack.data_dir / "privia.db", timeout=5, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # hold the write lock, as a stuck writer would
        with stack.client() as client:
            r = client.get("/api/health")
            assert r.status_code == 503
            assert r.json()["status"] == "degraded"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with stack.client() as client:
        r = client.get("/api/health")
        assert r.status_code == 200 and r.json()["status"] == "ok"


def test_a_worker_is_recycled_after_max_requests_without_failing_one(make_stack):
    stack = make_stack({"PRIVIA_WORKERS": "1", "PRIVIA_MAX_REQUESTS": "5"}, name="recycle")
    first = stack.fcgi_worker_pids()
    with stack.client() as client:
        statuses = [client.get("/api/health").status_code for _ in range(12)]
    assert statuses == [200] * 12
    later = wait_for(lambda: (lambda now: now if len(now) == 1 and now != first else None)(stack.fcgi_worker_pids()),
                     5, "the worker was not recycled")
    assert later != first


def test_the_pools_processes_allocate_with_jemalloc_and_its_settings(stack):
    """The benchmark's list and detail figures depend on it (Sources/CPoolAllocator): a build
    that silently fell back to glibc's malloc, or jemalloc ignoring the pool's settings, would
    cost list throughput or much memory with thousands of streams held."""
    with stack.client() as client:
        assert client.get("/api/health").status_code == 200
    for pid in [stack.fcgi_master_pid(), *stack.fcgi_worker_pids()]:
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "libjemalloc.so" in maps, f"pool process {pid} runs without jemalloc"
        # The symbol jemalloc reads its settings from is the one the executable defines.
        executable = os.readlink(f"/proc/{pid}/exe")
        symbols = subprocess.run(["nm", "-D", "--defined-only", executable], capture_output=True, text=True, check=True)
        assert " malloc_conf" in symbols.stdout
        # And jemalloc read it: its background thread, which returns freed pages of an idle
        # worker, runs (one per process).
        names = wait_for(lambda: thread_names(pid) if "jemalloc_bg_thd" in thread_names(pid) else None, 5,
                         f"pool process {pid} has no jemalloc background thread")
        assert names.count("jemalloc_bg_thd") == 1, names


def thread_names(pid: int) -> list[str]:
    names = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            names.append(Path(f"/proc/{pid}/task/{task}/comm").read_text().strip())
        except OSError:
            pass  # a thread that just ended
    return names


# A FastCGI record's header: version, type, request id, content length, padding length.
FCGI_HEADER = struct.Struct(">BBHHBx")


def fastcgi_record(kind: int, content: bytes) -> bytes:
    return FCGI_HEADER.pack(1, kind, 1, len(content), 0) + content


FCGI_STDIN_END = fastcgi_record(5, b"")


def fastcgi_health_request(socket_path: Path, *, end_input: bool = True) -> socket.socket:
    """Opens a connection to the pool and sends GET /api/health as nginx would (request 1,
    no FCGI_KEEP_CONN), then returns the connection unread. Without `end_input`, the empty
    FCGI_STDIN record that ends the request is left for the caller to send."""
    def pair(name: str, value: str) -> bytes:
        return bytes([len(name), len(value)]) + name.encode() + value.encode()

    params = b"".join(pair(n, v) for n, v in [
        ("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/api/health"), ("DOCUMENT_URI", "/api/health"),
        ("QUERY_STRING", ""), ("REMOTE_ADDR", "127.0.0.1"), ("REQUEST_ID", "f" * 32)])
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(10)
    connection.connect(str(socket_path))
    connection.sendall(fastcgi_record(1, struct.pack(">HB5x", 1, 0)) + fastcgi_record(4, params)
                       + fastcgi_record(4, b"") + (FCGI_STDIN_END if end_input else b""))
    return connection


def read_until_end_request(connection: socket.socket) -> bytes:
    received = b""
    while True:
        chunk = connection.recv(65536)
        assert chunk, f"the pool closed before FCGI_END_REQUEST: {received!r}"
        received += chunk
        # Each record: its header, content, padding; type 3 is FCGI_END_REQUEST.
        offset = 0
        while offset + FCGI_HEADER.size <= len(received):
            _, kind, _, length, padding = FCGI_HEADER.unpack_from(received, offset)
            if kind == 3 and offset + FCGI_HEADER.size + length <= len(received):
                return received
            offset += FCGI_HEADER.size + length + padding


def test_a_peer_that_keeps_its_end_open_does_not_hold_the_pools_thread(make_stack):
    """nginx closes the upstream connection after a request's end, but a slow or stuck one
    may not at once. The pool closes its side as soon as the response is written, so with
    one thread a second request is served while the first connection is still open (and
    even written to: libfcgi's default waits for the peer's close, for 2 s at each read)."""
    stack = make_stack({"PRIVIA_WORKERS": "1", "PRIVIA_THREADS": "1"}, name="linger")
    first = fastcgi_health_request(stack.fcgi_socket)
    assert b"Status: 200" in read_until_end_request(first)
    keep_writing = threading.Event()

    def trickle():
        while not keep_writing.is_set():
            try:
                first.send(b"\0")
            except OSError:  # the pool closed its end: what this test expects
                return
            time.sleep(0.05)

    writer = threading.Thread(target=trickle, daemon=True)
    writer.start()
    try:
        second = fastcgi_health_request(stack.fcgi_socket)
        second.settimeout(5)
        assert b"Status: 200" in read_until_end_request(second), "the second request was not served"
        second.close()
    finally:
        keep_writing.set()
        writer.join()
        first.close()


def test_the_pool_reads_a_request_to_its_end_before_it_closes(make_stack):
    """The pool closes the connection once the response is written, so it first reads the
    request to its end, the empty FCGI_STDIN record: closing on a peer still sending would break
    that peer's pipe (nginx, sending a large body, would answer 502). Here the input goes on
    past the request's CONTENT_LENGTH (none) for a megabyte, more than the socket can hold
    unread: the pool must read all of it before it closes."""
    stack = make_stack({"PRIVIA_WORKERS": "1", "PRIVIA_THREADS": "1"}, name="late-end")
    connection = fastcgi_health_request(stack.fcgi_socket, end_input=False)
    more_input = fastcgi_record(5, b"x" * 65535)
    for _ in range(16):
        connection.sendall(more_input)  # a broken pipe here: the pool closed before reading it
    connection.sendall(FCGI_STDIN_END)
    assert b"Status: 200" in read_until_end_request(connection)
    connection.close()
