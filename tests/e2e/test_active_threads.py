"""PRIVIA_ACTIVE_THREADS: few threads of a worker work at once, but streams, waits on a model
and writes waiting for their batch do not count, so they never hold up other requests."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

from api_client import bearer, hold_streams, sign_up_and_in


def test_held_streams_do_not_hold_up_other_requests_with_one_active_thread(make_stack):
    # One worker, one active thread: a stream that kept its place would make every other
    # request wait for its end (32 tokens at 60 ms each).
    stack = make_stack({"PRIVIA_WORKERS": "1", "PRIVIA_THREADS": "8", "PRIVIA_ACTIVE_THREADS": "1",
                        "PRIVIA_STUB_DELAY_MS": "60"}, name="active-streams")
    with stack.client() as client, contextlib.ExitStack() as held:
        token, _ = sign_up_and_in(client)
        streams = hold_streams(client, token, 3, held)
        # Served while all three streams are still running: their answers are not stored yet.
        listed = client.get("/api/conversations", headers=bearer(token))
        assert listed.status_code == 200
        assert [c["message_count"] for c in listed.json()] == [1, 1, 1]
        for parser, chunks in streams:
            for chunk in chunks:
                parser.feed(chunk)
            assert parser.done and parser.done["status"] == "complete"
        assert [c["message_count"] for c in client.get("/api/conversations", headers=bearer(token)).json()] == [2, 2, 2]


def test_concurrent_turns_all_complete_with_one_active_thread_a_worker(make_stack):
    # Without a model delay a turn keeps its place, and gives it up only while its two writes
    # wait for their batches: 48 turns at once over two workers, half of them new conversations.
    stack = make_stack({"PRIVIA_WORKERS": "2", "PRIVIA_THREADS": "32", "PRIVIA_ACTIVE_THREADS": "1",
                        "PRIVIA_STUB_DELAY_MS": "0"}, name="active-turns")
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        existing = [client.post("/api/query", headers=bearer(token), json={"question": f"seed {i}"}).json()["conversation_id"]
                    for i in range(4)]

    def turn(index: int) -> tuple[int, str]:
        body = {"question": f"turn {index}"}
        if index % 2:
            body["conversation_id"] = existing[(index // 2) % 4]
        with stack.client(timeout=30) as own:
            r = own.post("/api/query", headers=bearer(token), json=body)
            return r.status_code, r.text

    with ThreadPoolExecutor(max_workers=48) as pool:
        results = list(pool.map(turn, range(48)))
    assert [status for status, _ in results] == [200] * 48, [text for status, text in results if status != 200][:3]
    with stack.client() as client:
        conversations = client.get("/api/conversations", params={"limit": 100}, headers=bearer(token)).json()
    counts = {c["id"]: c["message_count"] for c in conversations}
    # Each seeded conversation: its own turn and six more; each new one: one turn.
    assert [counts[i] for i in existing] == [14, 14, 14, 14]
    assert sorted(n for i, n in counts.items() if i not in existing) == [2] * 24
