"""The whole stack: nginx in front of the pool and the relay, as `make run` starts it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import httpx
import pytest
import websocket

from api_client import bearer
from conftest import ALLOWED_ORIGIN, BIN_DIR, REFUSED_ORIGIN, REPO, free_ports

REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def assert_health(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "ok"
    for key in ("version", "env", "uptime", "timestamp"):
        assert key in body, body
    return body


# ---------------------------------------------------------------------------
# TLS, HTTP/2 and the redirect
# ---------------------------------------------------------------------------


def test_health_over_https_verifies_against_the_generated_certificate(stack):
    with stack.client() as client:
        body = assert_health(client.get("/api/health"))
    assert body["env"] == "development"
    key = stack.data_dir / "tls" / "key.pem"
    assert key.stat().st_mode & 0o777 == 0o600


def test_health_over_http2(stack):
    with stack.client(http2=True) as client:
        r = client.get("/api/health")
    assert r.http_version == "HTTP/2"
    assert_health(r)


def test_plain_http_redirects_to_https_port(stack):
    r = httpx.get(f"{stack.http_url}/api/health?probe=1", follow_redirects=False)
    assert r.status_code == 301
    assert r.headers["location"] == f"https://127.0.0.1:{stack.https_port}/api/health?probe=1"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_refuses_protocols_older_than_1_2(stack):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", stack.https_port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError) as refused:
            context.wrap_socket(raw, server_hostname="localhost")
    # The server's alert, not a client that could not offer TLS 1.1.
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused.value


def test_static_page_is_served(stack):
    with stack.client() as client:
        r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "Privia" in r.text


# ---------------------------------------------------------------------------
# Headers: security, request id
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/health", "/", "/no-such-page"])
def test_security_headers_everywhere_and_no_version(stack, path):
    with stack.client() as client:
        r = client.get(path)
    assert r.headers["strict-transport-security"].startswith("max-age=")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["server"] == "nginx"


def test_request_id_is_nginx_own_and_logged(stack):
    with stack.client() as client:
        first = client.get("/api/health", headers={"X-Request-Id": "client-chosen"})
        second = client.get("/api/health")
    ids = [r.headers.get_list("x-request-id") for r in (first, second)]
    assert all(len(values) == 1 for values in ids), ids
    first_id, second_id = ids[0][0], ids[1][0]
    assert REQUEST_ID.match(first_id) and REQUEST_ID.match(second_id)
    assert first_id != second_id

    # The JSON access log in the data dir carries the same id.
    log = stack.data_dir / "log" / "access.log"
    deadline = time.monotonic() + 5
    entry = None
    while entry is None and time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            record = json.loads(line)
            if record["request_id"] == first_id:
                entry = record
        time.sleep(0.05)
    assert entry is not None, "request id not in the access log"
    assert entry["status"] == 200 and entry["uri"] == "/api/health"


def test_request_id_reaches_the_pool(stack):
    """The pool gets $request_id as REQUEST_ID and logs it as JSON on stderr."""
    with stack.client() as client:
        request_id = client.get("/api/health").headers["x-request-id"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if request_id in stack.log_path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    pytest.fail(f"request id {request_id} not in the pool's log:\n{stack.log_tail()}")


# ---------------------------------------------------------------------------
# CORS
# ---------------------------------------------------------------------------


def preflight(stack, origin: str) -> httpx.Response:
    with stack.client() as client:
        return client.options(
            "/api/conversations",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )


def test_preflight_from_allowed_origin(stack):
    r = preflight(stack, ALLOWED_ORIGIN)
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "POST" in r.headers["access-control-allow-methods"]
    allowed_headers = r.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert "origin" in r.headers["vary"].lower()
    assert REQUEST_ID.match(r.headers["x-request-id"])


def test_preflight_from_refused_origin_gets_no_cors_headers(stack):
    r = preflight(stack, REFUSED_ORIGIN)
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-credentials" not in r.headers
    assert "access-control-allow-methods" not in r.headers


def test_simple_request_cors_headers(stack):
    with stack.client() as client:
        allowed = client.get("/api/health", headers={"Origin": ALLOWED_ORIGIN})
        refused = client.get("/api/health", headers={"Origin": REFUSED_ORIGIN})
    assert allowed.headers.get_list("access-control-allow-origin") == [ALLOWED_ORIGIN]
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-methods" not in allowed.headers  # preflight only
    assert "access-control-allow-origin" not in refused.headers
    assert "access-control-allow-credentials" not in refused.headers


# ---------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------


def test_login_is_rate_limited_with_429(stack):
    # From 127.0.0.2, so the budget of 127.0.0.1, which every other test uses, stays
    # untouched. The harness sets PRIVIA_AUTH_RATE=50r/s; back-to-back requests outrun it.
    transport = httpx.HTTPTransport(local_address="127.0.0.2", verify=stack.ssl_context())
    codes = []
    with httpx.Client(base_url=stack.https_url, transport=transport, timeout=15) as client:
        for _ in range(300):
            r = client.post("/api/auth/login", json={})
            codes.append(r.status_code)
            if r.status_code == 429:
                assert r.json()["code"] == "RATE_LIMIT"
                assert r.headers["x-content-type-options"] == "nosniff"
                break
        # Only sign-in and sign-up are limited.
        assert client.get("/api/health").status_code == 200
        assert client.options("/api/auth/login").status_code == 204
    assert codes[-1] == 429, codes
    assert len(codes) > 20 and 429 not in codes[:20], f"the burst of 20 should pass first: {codes}"


def test_oversized_body_is_refused_with_json_413(stack):
    with stack.client() as client:
        r = client.post("/api/auth/signup", content=b"x" * (2 * 1024 * 1024),
                        headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["code"] == "VALIDATION"


def test_a_body_just_under_the_limit_is_read_and_answered_never_cut_off(stack, user_token):
    """A question of almost a megabyte (a pasted document) goes through nginx in several
    writes, then the empty record that ends it; the pool answers it whole and closes the
    connection only after reading all of the request (closing on nginx while it still writes
    would break its pipe: a 502)."""
    question = "q" * (1024 * 1024 - 1024)  # under client_max_body_size (1m) with the JSON around it
    with stack.client() as client:
        for _ in range(2):
            r = client.post("/api/query", headers=bearer(user_token), json={"question": question})
            assert r.status_code == 200, (r.status_code, r.text[:200])
            assert r.json()["answer"]


# ---------------------------------------------------------------------------
# SSE through nginx
# ---------------------------------------------------------------------------


def test_sse_streams_through_nginx_unbuffered_and_uncompressed(stack, user_token):
    headers = {"Authorization": f"Bearer {user_token}", "Accept-Encoding": "gzip"}
    started = time.monotonic()
    first_token_at = None
    events = []
    with stack.client() as client:
        with client.stream("POST", "/api/stream", json={"question": "Hello?"}, headers=headers) as r:
            assert r.status_code == 200, r.read()
            assert r.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in r.headers
            for line in r.iter_lines():
                if line.startswith("data:") and first_token_at is None:
                    first_token_at = time.monotonic() - started
                if line.startswith("event:"):
                    events.append(line.split(":", 1)[1].strip())
    total = time.monotonic() - started
    assert events and events[-1] == "done", events
    # The stub sleeps PRIVIA_STUB_DELAY_MS (20 ms) before each of its ~35 words: a
    # buffered response would deliver the first token together with the last.
    assert first_token_at is not None and first_token_at < total / 2, (first_token_at, total)


# ---------------------------------------------------------------------------
# WebSockets
# ---------------------------------------------------------------------------


def ws_connect(stack, origin: str | None, token: str | None = None) -> websocket.WebSocket:
    headers = [f"Authorization: Bearer {token}"] if token else []
    return websocket.create_connection(
        f"{stack.ws_url}/api/ws/chat",
        header=headers,
        origin=origin,
        suppress_origin=origin is None,
        sslopt={"ca_certs": stack.ca_file, "check_hostname": False},
        timeout=10,
    )


def test_websocket_upgrade_and_ping_pong(stack, user_token):
    ws = ws_connect(stack, ALLOWED_ORIGIN, user_token)
    try:
        assert ws.getstatus() == 101
        assert REQUEST_ID.match(ws.getheaders()["x-request-id"])
        ws.ping(b"privia-e2e")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            opcode, frame = ws.recv_data_frame(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_PONG:
                assert frame.data == b"privia-e2e"
                break
            assert opcode != websocket.ABNF.OPCODE_CLOSE, f"relay closed the socket: {frame.data!r}"
        else:
            pytest.fail("no pong within 5 s")
    finally:
        ws.close()


def test_websocket_from_refused_origin_gets_403(stack, user_token):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        ws_connect(stack, REFUSED_ORIGIN, user_token)
    assert refused.value.status_code == 403


# ---------------------------------------------------------------------------
# The pool
# ---------------------------------------------------------------------------


def test_direct_fastcgi_request_to_the_pool_socket(stack):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "/api/health",
        "DOCUMENT_URI": "/api/health",
        "REQUEST_URI": "/api/health",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": str(stack.https_port),
        "HTTP_HOST": "localhost",
        "REQUEST_ID": "0123456789abcdef0123456789abcdef",
    }
    out = subprocess.run(
        ["cgi-fcgi", "-bind", "-connect", str(stack.fcgi_socket)],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=20,
    )
    assert out.returncode == 0, out.stderr
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    headers = dict(
        (name.strip().lower(), value.strip())
        for name, _, value in (line.partition(":") for line in head.decode().split("\r\n"))
    )
    assert headers.get("status", "200").startswith("200"), head
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["status"] == "ok"


def test_killed_worker_is_replaced_and_requests_keep_succeeding(make_stack):
    s = make_stack({"PRIVIA_WORKERS": "2"}, name="workers")
    before = s.fcgi_worker_pids()
    assert len(before) == 2, before
    victim = before[0]
    os.kill(victim, signal.SIGKILL)

    deadline = time.monotonic() + 3
    after = []
    while time.monotonic() < deadline:
        after = s.fcgi_worker_pids()
        if victim not in after and len(after) == len(before):
            break
        time.sleep(0.05)
    assert victim not in after and len(after) == len(before), (before, after)
    assert set(after) - set(before), "no new worker pid"

    with s.client() as client:
        codes = [client.get("/api/health").status_code for _ in range(20)]
    assert codes == [200] * 20, codes


def test_edited_applied_migration_refuses_start_up(make_stack, tmp_path):
    source = REPO / "Migrations"
    if not sorted(source.glob("*.sql")):
        pytest.skip("Migrations/ has no .sql file yet")
    migrations = tmp_path / "Migrations"
    shutil.copytree(source, migrations)

    s = make_stack({"PRIVIA_MIGRATIONS_DIR": str(migrations)}, name="migrations")
    s.stop()

    first = sorted(migrations.glob("*.sql"))[0]
    with first.open("a") as sql:
        sql.write("\n-- edited after it was applied\n")

    started = time.monotonic()
    pool = subprocess.Popen(
        [str(BIN_DIR / "privia-fcgi")], env=s.env, cwd=REPO, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        output, _ = pool.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(pool.pid, signal.SIGKILL)  # the master and any worker it forked
        output, _ = pool.communicate()
        pytest.fail(f"privia-fcgi kept running with an edited migration:\n{output.decode(errors='replace')}")
    elapsed = time.monotonic() - started
    text = output.decode(errors="replace")
    assert pool.returncode != 0, text
    assert elapsed < 10
    assert first.name in text, text
    assert not s.fcgi_socket.exists(), "the pool opened its socket despite the edited migration"


# ---------------------------------------------------------------------------
# The launcher
# ---------------------------------------------------------------------------


def test_second_launcher_on_the_same_data_dir_is_refused(stack):
    env = dict(stack.env)
    env["PRIVIA_HTTPS_PORT"], env["PRIVIA_HTTP_PORT"] = (str(p) for p in free_ports(2))
    out = subprocess.run([str(REPO / "scripts" / "privia-stack")], env=env, cwd=REPO,
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert out.returncode != 0
    assert b"another Privia stack is using" in out.stderr, out.stderr
    with stack.client() as client:  # the running stack is untouched
        assert_health(client.get("/api/health"))


def test_restart_reuses_state_and_ctrl_c_stops_cleanly(make_stack):
    s = make_stack(name="restart")
    cert = (s.data_dir / "tls" / "cert.pem").read_bytes()
    secret = (s.data_dir / "secret_key").read_bytes()
    assert (s.data_dir / "secret_key").stat().st_mode & 0o777 == 0o600
    assert (s.data_dir / "run").stat().st_mode & 0o777 == 0o750
    s.stop(signal.SIGINT, group=True)  # Ctrl-C in the terminal running `make run`

    started = time.monotonic()
    s.start()
    assert time.monotonic() - started < 15
    assert (s.data_dir / "tls" / "cert.pem").read_bytes() == cert
    assert (s.data_dir / "secret_key").read_bytes() == secret
    with s.client() as client:
        assert_health(client.get("/api/health"))


def test_stack_stops_when_one_service_dies(make_stack):
    s = make_stack(name="dies")
    family = s.family()
    os.kill(s.service_pid("privia-relay"), signal.SIGKILL)
    code = s.wait_for_exit(family)
    assert code != 0
    assert "relay exited" in s.log_tail()


def test_snippets_work_in_an_operators_own_server_block(stack, tmp_path):
    """nginx/README.md's recipe: the snippets included into someone else's nginx.conf."""
    shutil.copytree(REPO / "nginx" / "snippets", tmp_path / "snippets")
    tls = stack.data_dir / "tls"
    (tmp_path / "nginx.conf").write_text(f"""
pid {tmp_path}/nginx.pid;
error_log stderr;
events {{}}
http {{
  include /etc/nginx/mime.types;
  client_body_temp_path {tmp_path}/body;
  include snippets/privia/http.conf;
  limit_req_zone $privia_auth_limit_key zone=privia_auth:10m rate=30r/m;
  upstream privia_fcgi  {{ server unix:/var/lib/privia/run/privia-fcgi.sock; }}
  upstream privia_relay {{ server unix:/var/lib/privia/run/privia-relay.sock; }}
  server {{
    listen 127.0.0.1:{free_ports(1)[0]} ssl http2;
    server_name privia.example.com;
    ssl_certificate {tls}/cert.pem;
    ssl_certificate_key {tls}/key.pem;
    include snippets/privia/tls.conf;
    include snippets/privia/server.conf;
  }}
}}
""")
    out = subprocess.run(["nginx", "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
