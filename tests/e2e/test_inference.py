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
