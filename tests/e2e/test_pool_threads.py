"""A worker's threads: it starts with PRIVIA_ACTIVE_THREADS of them, adds one whenever a
request leaves too few waiting to accept, up to PRIVIA_THREADS (each held stream keeps one),
and the extra ones end after PRIVIA_THREAD_IDLE_SECONDS without a request."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from api_client import bearer, hold_streams, sign_up_and_in


def serving_threads(pid: int) -> int:
    """The worker's threads that serve requests (the pool names them privia-serve)."""
    count = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            if Path(f"/proc/{pid}/task/{task}/comm").read_text().strip() == "privia-serve":
                count += 1
        except OSError:
            pass  # a thread that just ended
    return count


def wait_until_serving(pid: int, threads: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while serving_threads(pid) != threads:
        assert time.monotonic() < deadline, f"{serving_threads(pid)} serving threads, not {threads}"
        time.sleep(0.1)


def test_a_worker_starts_threads_as_streams_need_them_and_ends_the_idle_ones(make_stack):
    stack = make_stack({"PRIVIA_WORKERS": "1", "PRIVIA_THREADS": "12", "PRIVIA_ACTIVE_THREADS": "2",
                        "PRIVIA_STUB_DELAY_MS": "200", "PRIVIA_THREAD_IDLE_SECONDS": "1"}, name="threads")
    (worker,) = stack.fcgi_worker_pids()
    # Two at rest (the launcher's health checks may have started a spare one for a second).
    wait_until_serving(worker, 2)
    with stack.client() as client, contextlib.ExitStack() as held:
        token, _ = sign_up_and_in(client)
        # Ten streams held at once (each about 40 tokens at 200 ms): each needs a thread of its own.
        streams = hold_streams(client, token, 10, held)
        assert all(not parser.done for parser, _ in streams), "a stream ended before the last one started"
        # One per held stream, and spare ones waiting to accept, never beyond PRIVIA_THREADS.
        assert 10 < serving_threads(worker) <= 12
        for parser, chunks in streams:
            for chunk in chunks:
                parser.feed(chunk)
            assert parser.done and parser.done["status"] == "complete"
    # A second without a request, and the threads beyond PRIVIA_ACTIVE_THREADS end.
    wait_until_serving(worker, 2)
    with stack.client() as client:
        assert client.get("/api/conversations", headers=bearer(token)).status_code == 200
