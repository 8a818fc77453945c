"""Browser tests: the web client in Debian's chromium, driven by Playwright, against the real
stack (tests/e2e's harness) with the fake OpenAI-compatible provider on loopback.

Run apart from tests/e2e (the Makefile does): both directories have a conftest.py, and tests
import helpers by the name `conftest`. Never `playwright install`: the browser is
/usr/bin/chromium from scripts/install-deps.sh.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

E2E = Path(__file__).resolve().parents[1] / "e2e"
sys.path.insert(0, str(E2E))

from api_client import PASSWORD, new_email, sign_up_and_in  # noqa: E402,F401


def _load_e2e_harness():
    spec = importlib.util.spec_from_file_location("e2e_harness", E2E / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


harness = _load_e2e_harness()
REPO = harness.REPO
running_stack = harness.running_stack
free_ports = harness.free_ports

FAKE_PROVIDER = REPO / "tests" / "fake_provider" / "fake_openai.py"
ARTIFACTS = Path(__file__).resolve().parent / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def provider():
    """The fake provider on a free loopback port; it exits with this process."""
    port_file = Path(tempfile.mkdtemp(prefix="privia-browser-fake-")) / "port"
    process = subprocess.Popen([sys.executable, str(FAKE_PROVIDER), "--port", "0", "--port-file", str(port_file),
                                "--exit-with-stdin"], stdin=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not port_file.exists():
        assert time.monotonic() < deadline, "the fake provider did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port_file.read_text().strip()}"
    finally:
        process.stdin.close()
        process.terminate()
        process.wait(timeout=10)


def _models_file(provider_url: str) -> str:
    """`echo` answers with the question itself (newlines kept): a code block in the question
    comes back as one. `slow` does the same a word every 150 ms, for stopping."""
    model = lambda model_id, behaviour, name: {  # noqa: E731
        "id": model_id, "provider": "fake", "model": behaviour, "display_name": name,
        "input_price_per_million": 1.0, "output_price_per_million": 2.0}
    config = {
        "providers": [{"id": "fake", "base_url": f"{provider_url}/v1", "api_key_env": "FAKE_PROVIDER_KEY"}],
        "models": [model("echo", "echo:delay_ms=40", "Echo"), model("slow", "echo:delay_ms=150", "Slow echo")],
        "default_model": "echo",
    }
    path = Path(tempfile.mkdtemp(prefix="privia-browser-models-")) / "models.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.fixture(scope="session")
def stack(provider):
    with running_stack({"PRIVIA_MODELS_FILE": _models_file(provider), "FAKE_PROVIDER_KEY": "sk-fake"},
                       name="browser") as s:
        s.origin = f"https://localhost:{s.https_port}"  # the allowed origin (PRIVIA_ALLOWED_ORIGINS)
        yield s


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; run scripts/install-deps.sh (it installs Debian's chromium)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


class Session:
    """A browser context on the stack: its pages, and every request any of them made."""

    def __init__(self, browser, stack, **options):
        self.stack = stack
        self.origin = stack.origin
        self.context = browser.new_context(ignore_https_errors=True, base_url=stack.origin, **options)
        self.context.set_default_timeout(15_000)
        self.requests: list[str] = []
        self.page_errors: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))

    def new_page(self):
        page = self.context.new_page()
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("websocket", lambda socket: self.requests.append(socket.url))
        return page

    def foreign_requests(self) -> list[str]:
        """Requests to anything but this origin (data: URLs are not requests to anyone)."""
        return [url for url in self.requests
                if not url.startswith("data:") and f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
                not in (self.origin, self.origin.replace("https:", "wss:"))]

    def close(self):
        self.context.close()


@pytest.fixture
def session(browser, stack):
    """A fresh browser context; afterwards no page may have contacted another origin or thrown."""
    made = Session(browser, stack)
    yield made
    made.close()
    assert made.foreign_requests() == []
    assert made.page_errors == []


@pytest.fixture
def make_session(browser, stack):
    made: list[Session] = []

    def make(**options) -> Session:
        s = Session(browser, stack, **options)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
        assert s.foreign_requests() == []
        assert s.page_errors == []


def account(stack) -> tuple[str, str]:
    """A new account, made through the API: (email, password)."""
    email = new_email()
    with stack.client() as client:
        r = client.post("/api/auth/signup", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
    return email, PASSWORD


def sign_in(page, email: str, password: str = PASSWORD, path: str = "/") -> None:
    """Opens `path`, which sends a signed-out browser to the sign-in page, and signs in."""
    page.goto(path)
    page.wait_for_url("**/signin")
    page.fill("#auth-email", email)
    page.fill("#auth-password", password)
    page.click("form.auth-form button[type=submit]")
    page.wait_for_selector("#composer-input")


def signed_in_page(session, stack):
    email, password = account(stack)
    page = session.new_page()
    sign_in(page, email, password)
    return page, email


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)
