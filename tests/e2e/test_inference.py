"""Real inference through the real stack, against a fake OpenAI-compatible provider on
loopback that speaks the streaming wire format, failures included."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from api_client import FrontendSSE, bearer, sign_up_and_in
from conftest import REPO, free_ports, running_stack
from test_websocket import Turn, connect, finish_turn, run_turn, send, tokens_until

FAKE = REPO / "tests" / "fake_provider" / "fake_openai.py"


@pytest.fixture(scope="module")
def provider():
    """The fake provider on a free loopback port; it exits when this process does."""
    port_file = Path(tempfile.mkdtemp(prefix="privia-fake-")) / "port"
    process = subprocess.Popen([sys.executable, str(FAKE), "--port", "0", "--port-file", str(port_file), "--exit-with-stdin"],
                               stdin=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not port_file.exists():
        assert time.monotonic() < deadline, "the fake provider did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port_file.read_text().strip()}"
    try:
        yield url
    finally:
        process.stdin.close()
        process.terminate()
        process.wait(timeout=10)


def models_file(provider_url: str) -> str:
    dead_port = free_ports(1)[0]  # nothing listens there: connecting is refused
    fake = lambda model_id, behaviour, **extra: {  # noqa: E731
        "id": model_id, "provider": "fake", "model": behaviour, "display_name": model_id.title(),
        "input_price_per_million": 1.0, "output_price_per_million": 2.0, **extra}
    config = {
        "providers": [
            {"id": "fake", "base_url": f"{provider_url}/v1", "api_key_env": "FAKE_PROVIDER_KEY"},
            {"id": "dead", "base_url": f"http://127.0.0.1:{dead_port}/v1"},
        ],
        "models": [
            fake("fast", "echo:delay_ms=5"),
            {"id": "down", "provider": "dead", "model": "any", "display_name": "Down"},
            fake("broken", "fail-500"),
            fake("busy", "rate-limit:retry_after=30"),
            fake("stall", "stall:after=2:seconds=30"),
            fake("drop", "drop:after=2"),
            fake("slow", "stream:tokens=300:delay_ms=50"),
        ],
        "default_model": "fast",
        "fallback": ["fast"],
        "connect_timeout_seconds": 2,
        "idle_timeout_seconds": 1,
    }
    path = Path(tempfile.mkdtemp(prefix="privia-models-")) / "models.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.fixture(scope="module")
def inference_stack(provider):
    with running_stack({"PRIVIA_MODELS_FILE": models_file(provider), "FAKE_PROVIDER_KEY": "sk-fake-secret-key"},
                       name="inference") as stack:
        yield stack


def requests_seen(provider: str) -> list[dict]:
    return httpx.get(f"{provider}/_requests", timeout=5).json()


def stream_turn(client, token, body) -> FrontendSSE:
    parser = FrontendSSE()
    with client.stream("POST", "/api/stream", headers=bearer(token), json=body) as r:
        assert r.status_code == 200, r.read()
        for chunk in r.iter_text():
            parser.feed(chunk)
    return parser


def last_message(client, token, conversation_id):
    return client.get(f"/api/conversations/{conversation_id}", headers=bearer(token)).json()["messages"][-1]


def test_models_are_listed_with_prices_and_an_unknown_one_is_refused(inference_stack):
    with inference_stack.client() as client:
        token, _ = sign_up_and_in(client)
        models = client.get("/api/models", headers=bearer(token)).json()
        fast = next(m for m in models if m["id"] == "fast")
        assert fast["default"] is True and fast["input_price_per_million"] == 1.0
        r = client.post("/api/stream", headers=bearer(token), json={"question": "hi", "model": "nope"})
        assert r.status_code == 400 and r.json()["code"] == "VALIDATION"


def test_a_streamed_answer_with_its_usage_recorded(inference_stack, provider):
    with inference_stack.client() as client:
        token, _ = sign_up_and_in(client)
        parser = stream_turn(client, token, {"question": "privacy first chat", "model": "fast"})
        assert parser.answer.strip() == "privacy first chat", "echo streams the question back"
        assert parser.done["model"] == "fast" and parser.done["mode"] == "chat"
        sent = [r for r in requests_seen(provider) if r.get("model") == "echo:delay_ms=5"][-1]
        assert sent["headers"].get("Authorization", sent["headers"].get("authorization")) == "Bearer sk-fake-secret-key"
        assert sent["body"]["stream"] is True and sent["body"]["messages"][-1]["content"] == "privacy first chat"
        usage = client.get("/api/usage", headers=bearer(token)).json()
        row = usage["by_day_and_model"][0]
        assert row["model"] == "fast" and row["provider"] == "fake" and row["estimated"] is False
        assert row["input_tokens"] > 0 and row["output_tokens"] == 3
        assert row["cost"] == pytest.approx((row["input_tokens"] * 1.0 + row["output_tokens"] * 2.0) / 1e6)


@pytest.mark.parametrize("model", ["down", "broken", "busy"])
def test_a_failure_before_the_first_token_falls_back(inference_stack, model):
    with inference_stack.client() as client:
        token, _ = sign_up_and_in(client)
        parser = stream_turn(client, token, {"question": "fall back please", "model": model})
        assert parser.error is None
        assert parser.done["model"] == "fast"
        assert parser.answer.strip() == "fall back please"


@pytest.mark.parametrize("model", ["stall", "drop"])
def test_a_failure_after_the_first_token_keeps_the_partial_answer(inference_stack, model):
    with inference_stack.client() as client:
        token, _ = sign_up_and_in(client)
        started = time.monotonic()
        parser = stream_turn(client, token, {"question": "go", "model": model})
        assert time.monotonic() - started < 10, "a stalled provider must not hang the turn"
        assert parser.token_events == 2 and parser.done is None
        assert parser.error["code"] == "PROVIDER"
        message = last_message(client, token, parser.error["conversation_id"])
        assert message["status"] == "failed" and message["content"] == parser.answer.strip()


def test_a_stop_cancels_the_upstream_transfer(inference_stack, provider):
    with inference_stack.client() as client:
        token, _ = sign_up_and_in(client)
        httpx.delete(f"{provider}/_requests", timeout=5)
        parser = FrontendSSE()
        with client.stream("POST", "/api/stream", headers=bearer(token), json={"question": "long", "model": "slow"}) as r:
            for chunk in r.iter_text():
                parser.feed(chunk)
                if parser.token_events >= 3:
                    break
        deadline = time.monotonic() + 3
        while True:
            seen = [r for r in requests_seen(provider) if r.get("model", "").startswith("stream:tokens=300")]
            if seen and seen[-1].get("client_closed"):
                break
            assert time.monotonic() < deadline, f"the provider never saw the connection close: {seen}"
            time.sleep(0.05)
        assert seen[-1]["tokens_sent"] < 300


def test_an_idempotent_resend_makes_one_turn(inference_stack, provider):
    with inference_stack.client() as client:
        token, _ = sign_up_and_in(client)
        httpx.delete(f"{provider}/_requests", timeout=5)
        headers = bearer(token) | {"Idempotency-Key": "resend-1"}
        first = client.post("/api/query", headers=headers, json={"question": "only once", "model": "fast"}).json()
        second = client.post("/api/query", headers=headers, json={"question": "only once", "model": "fast"}).json()
        assert second["message_id"] == first["message_id"] and second["answer"] == first["answer"]
        assert len([r for r in requests_seen(provider) if r.get("path", "").endswith("/chat/completions")]) == 1
        detail = client.get(f"/api/conversations/{first['conversation_id']}", headers=bearer(token)).json()
        assert len(detail["messages"]) == 2


def test_regenerate_and_edit_replace_only_the_last_exchange(inference_stack):
    with inference_stack.client() as client:
        token, _ = sign_up_and_in(client)
        first = stream_turn(client, token, {"question": "alpha", "model": "fast"}).done
        cid = first["conversation_id"]
        stream_turn(client, token, {"question": "betta", "conversation_id": cid, "model": "fast"})
        regenerated = stream_turn(client, token, {"action": "regenerate", "conversation_id": cid, "model": "fast"})
        assert regenerated.answer.strip() == "betta"
        edited = stream_turn(client, token, {"action": "edit", "question": "beta", "conversation_id": cid, "model": "fast"})
        assert edited.answer.strip() == "beta"
        messages = client.get(f"/api/conversations/{cid}", headers=bearer(token)).json()["messages"]
        assert [m["content"] for m in messages] == ["alpha", "alpha", "beta", "beta"]
        assert messages[1]["id"] == first["message_id"], "the first exchange is untouched"


def test_a_turn_over_the_daily_budget_is_refused_before_any_provider_call(make_stack, provider):
    stack = make_stack({"PRIVIA_MODELS_FILE": models_file(provider), "FAKE_PROVIDER_KEY": "k",
                        "PRIVIA_DAILY_TOKEN_LIMIT": "5"}, name="budget")
    with stack.client() as client:
        token, _ = sign_up_and_in(client)
        assert client.post("/api/query", headers=bearer(token), json={"question": "one two three"}).status_code == 200
        httpx.delete(f"{provider}/_requests", timeout=5)
        r = client.post("/api/stream", headers=bearer(token), json={"question": "again"})
        assert r.status_code == 429 and r.json()["code"] == "RATE_LIMIT"
        assert "resets at 00:00 UTC" in r.json()["detail"]
        assert requests_seen(provider) == []


# ---------------------------------------------------------------------------
# Every turn ends with its transport's terminal frame: complete, stopped or failed
# ---------------------------------------------------------------------------

# The model that makes each ending: a whole answer, one long enough to stop, one that breaks
# off after two tokens (too late to fall back).
ENDING_MODEL = {"complete": "fast", "stopped": "slow", "failed": "drop"}


def wait_for_answer(client, token, conversation_id, within: float = 3.0) -> dict:
    """The conversation's answer, once the turn has stored it."""
    deadline = time.monotonic() + within
    while True:
        message = last_message(client, token, conversation_id)
        if message["role"] == "assistant":
            return message
        assert time.monotonic() < deadline, f"no answer was stored within {within}s"
        time.sleep(0.05)


def new_conversation(client, token) -> str:
    r = client.post("/api/conversations", headers=bearer(token), json={})
    assert r.status_code in (200, 201), r.text
    return r.json()["id"]


@pytest.mark.parametrize("ending", ["complete", "failed"])
def test_a_rest_turn_answers_with_its_status_or_an_error(inference_stack, ending):
    with inference_stack.client() as client:
        token, _ = sign_up_and_in(client)
        chat = new_conversation(client, token)
        r = client.post("/api/query", headers=bearer(token),
                        json={"question": "how did it end", "conversation_id": chat, "model": ENDING_MODEL[ending]})
        stored = last_message(client, token, chat)
        if ending == "complete":
            assert r.status_code == 200 and r.json()["status"] == "complete", r.text
            assert r.json()["message_id"] == stored["id"]
        else:
            assert r.status_code == 502 and r.json()["code"] == "PROVIDER" and r.json()["detail"], r.text
        assert stored["role"] == "assistant" and stored["status"] == ending, stored


@pytest.mark.parametrize("ending", ["complete", "stopped", "failed"])
def test_an_sse_turn_ends_with_done_or_error(inference_stack, ending):
    with inference_stack.client() as client:
        token, _ = sign_up_and_in(client)
        chat = new_conversation(client, token)
        parser = FrontendSSE()
        body = {"question": "how did it end", "conversation_id": chat, "model": ENDING_MODEL[ending]}
        with client.stream("POST", "/api/stream", headers=bearer(token), json=body) as r:
            assert r.status_code == 200, r.read()
            for chunk in r.iter_text():
                parser.feed(chunk)
                if ending == "stopped" and parser.token_events >= 2:
                    break  # closing the connection is the stop: nothing can reach this client now
        stored = wait_for_answer(client, token, chat)
        assert stored["status"] == ending, stored
        if ending == "complete":
            assert parser.error is None and parser.done["status"] == "complete", parser.done
            assert parser.done["message_id"] == stored["id"]
        elif ending == "failed":
            assert parser.done is None and parser.error["code"] == "PROVIDER", parser.error
            assert parser.error["message_id"] == stored["id"]
        else:
            assert parser.done is None and parser.error is None


@pytest.mark.parametrize("ending", ["complete", "stopped", "failed"])
def test_a_websocket_turn_ends_with_done_or_error(inference_stack, ending):
    with inference_stack.client() as client:
        token, _ = sign_up_and_in(client)
        chat = new_conversation(client, token)
        body = {"question": "how did it end", "conversation_id": chat, "model": ENDING_MODEL[ending]}
        ws = connect(inference_stack, token)
        try:
            if ending == "stopped":
                send(ws, body)
                turn = Turn(tokens=tokens_until(ws, 2))
                send(ws, {"type": "stop"})
                finish_turn(ws, timeout=5, turn=turn)
            else:
                turn = run_turn(ws, body)
        finally:
            ws.close()
        stored = wait_for_answer(client, token, chat)
        assert stored["status"] == ending, stored
        if ending == "failed":
            assert turn.end["type"] == "error" and turn.end["code"] == "PROVIDER" and turn.end["content"], turn.end
        else:
            assert turn.end["type"] == "done" and turn.end["status"] == ending, turn.end
            assert turn.end["message_id"] == stored["id"] and turn.end["model"] == ENDING_MODEL[ending]
            assert stored["content"] == turn.answer.strip()


def completions_since(provider: str, first_id: int) -> list[dict]:
    return [r for r in requests_seen(provider) if r["path"].endswith("/chat/completions") and r["id"] > first_id]


def last_request_id(provider: str) -> int:
    return max((r["id"] for r in requests_seen(provider)), default=0)


def test_turns_reuse_the_provider_connection_and_a_stop_or_a_drop_leaves_none_broken(inference_stack, provider):
    workers = int(inference_stack.env["PRIVIA_WORKERS"])
    with inference_stack.client() as client:
        token, _ = sign_up_and_in(client)
        before = last_request_id(provider)
        for i in range(3 * workers):
            assert stream_turn(client, token, {"question": f"turn {i}", "model": "fast"}).answer.strip() == f"turn {i}"
        turns = completions_since(provider, before)
        assert len(turns) == 3 * workers
        # Each pool process keeps its connection for its next turn: at most one per process.
        assert len({r["connection"] for r in turns}) <= workers, turns

        # A turn stopped mid-answer (the client leaves), and one whose provider drops the
        # connection: neither connection is used again, and the next turns work.
        for model in ("slow", "drop"):
            before = last_request_id(provider)
            parser = FrontendSSE()
            with client.stream("POST", "/api/stream", headers=bearer(token), json={"question": "go", "model": model}) as r:
                for chunk in r.iter_text():
                    parser.feed(chunk)
                    if model == "slow" and parser.token_events >= 2:
                        break
            deadline = time.monotonic() + 5
            while not (broken := completions_since(provider, before)[0])["finished"]:
                assert time.monotonic() < deadline, f"the provider never saw the {model} turn end: {broken}"
                time.sleep(0.05)
            assert not broken["completed"], broken
            for i in range(workers + 1):
                assert stream_turn(client, token, {"question": f"after {model} {i}", "model": "fast"}).done is not None
            later = completions_since(provider, broken["id"])
            assert len(later) == workers + 1 and all(r["completed"] for r in later), later
            assert broken["connection"] not in {r["connection"] for r in later}
