"""End-to-end harness: the real stack, started the way `make run` starts it.

Each `Stack` is scripts/privia-stack (nginx + privia-fcgi + privia-relay) on two free
loopback ports with its own temporary data directory. The session-wide `stack` fixture
serves most tests; `make_stack` starts a private one with extra environment for tests
that kill or break things. Stopping a stack sends SIGTERM to the launcher, as Ctrl-C or
`docker stop` would, and fails the test if any process of that stack is still alive.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

from launcher import descendants, launcher_env, process_table, wait_until_healthy
from loopback import free_ports  # noqa: F401  (tests import it from here too)

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "scripts" / "privia-stack"
BIN_DIR = Path(os.environ.get("PRIVIA_BIN_DIR", REPO / ".build" / "release")).resolve()

ALLOWED_ORIGIN = "https://app.example.test"
REFUSED_ORIGIN = "https://evil.example.test"

# Short drain so stopping a stack takes seconds, not the production default of 30.
GRACE_SECONDS = 5


# ---------------------------------------------------------------------------
# Processes, read from /proc
# ---------------------------------------------------------------------------


def still_alive(processes: dict[int, int]) -> list[int]:
    """Those of `processes` (pid -> start time) that are the same processes and still run."""
    table = process_table()
    return [pid for pid, start in processes.items() if pid in table and table[pid][1] == start]


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line or environment contains `text`."""
    found = []
    needle = text.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        for name in ("cmdline", "environ"):
            try:
                if needle in Path(f"/proc/{entry}/{name}").read_bytes():
                    found.append(int(entry))
                    break
            except OSError:
                pass
    return [pid for pid in found if pid in process_table()]


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def child_pids(pid: int) -> list[int]:
    return sorted(child for child, (ppid, _) in process_table().items() if ppid == pid)


# ---------------------------------------------------------------------------
# The stack
# ---------------------------------------------------------------------------


class Stack:
    """One running copy of scripts/privia-stack."""

    def __init__(self, extra_env: dict[str, str] | None = None, name: str = "stack"):
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"privia-e2e-{name}-"))
        # nginx's workers run as www-data when we are root: they must reach run/.
        os.chmod(self.data_dir, 0o755)
        self.https_port, self.http_port = free_ports(2)
        env = launcher_env(
            self.data_dir, self.https_port, self.http_port, BIN_DIR, REPO / "Migrations",
            PRIVIA_ALLOWED_ORIGINS=f"{ALLOWED_ORIGIN},https://localhost:{self.https_port}",
            PRIVIA_WORKERS="2",
            PRIVIA_THREADS="32",
            PRIVIA_STUB_DELAY_MS="20",
            PRIVIA_GRACE_SECONDS=str(GRACE_SECONDS),
        )
        env.update(extra_env or {})
        self.env = env
        self.process: subprocess.Popen | None = None
        self.log_path = self.data_dir / "stack.out"
        self._log = None

    # -- addresses ---------------------------------------------------------

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"wss://127.0.0.1:{self.https_port}"

    @property
    def ca_file(self) -> str:
        """The stack's self-signed certificate, trusted as its own CA."""
        return str(self.data_dir / "tls" / "cert.pem")

    @property
    def fcgi_socket(self) -> Path:
        return self.data_dir / "run" / "privia-fcgi.sock"

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts exactly this stack's certificate (made for localhost and 127.0.0.1)."""
        return ssl.create_default_context(cafile=self.ca_file)

    def client(self, **kwargs) -> httpx.Client:
        kwargs.setdefault("timeout", 15.0)
        return httpx.Client(base_url=self.https_url, verify=self.ssl_context(), **kwargs)

    # -- the pool's processes -----------------------------------------------

    def fcgi_master_pid(self) -> int:
        """The pool writes its master's pid to run/privia-fcgi.pid."""
        return int((self.data_dir / "run" / "privia-fcgi.pid").read_text().strip())

    def fcgi_worker_pids(self) -> list[int]:
        return child_pids(self.fcgi_master_pid())

    # -- life cycle ----------------------------------------------------------

    def start(self, timeout: float = 120.0) -> "Stack":
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(LAUNCHER)],
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # like `make run` in its own terminal
            preexec_fn=_with_ctrl_c,
        )
        problem = wait_until_healthy(self.process, self.https_url, timeout)
        if problem is None:
            return self
        if self.process.poll() is None:
            self.kill()
        raise RuntimeError(f"{problem}:\n{self.log_tail()}")

    def service_pid(self, command: str) -> int:
        """The pid of one of the launcher's three services, by command name."""
        assert self.process is not None
        for pid in child_pids(self.process.pid):
            if command_name(pid) == command:
                return pid
        raise LookupError(f"no {command} under the launcher")

    def stop(self, sig: int = signal.SIGTERM, *, group: bool = False) -> None:
        """Signal the launcher (or its whole process group, as a terminal's Ctrl-C does);
        it must exit 0 and leave nothing running."""
        if self.process is None:
            return
        if self.process.poll() is not None:
            code = self.process.returncode
            self.process = None
            self._close_log()
            raise AssertionError(f"privia-stack had already exited with {code}:\n{self.log_tail()}")
        family = self.family()
        if group:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        code = self.wait_for_exit(family)
        assert code == 0, f"privia-stack exited {code} on signal {sig}:\n{self.log_tail()}"

    def family(self) -> dict[int, int]:
        """pid -> start time of the launcher and everything it started."""
        assert self.process is not None
        found = descendants(self.process.pid)
        found[self.process.pid] = process_table().get(self.process.pid, (0, 0))[1]
        return found

    def wait_for_exit(self, family: dict[int, int], timeout: float = GRACE_SECONDS + 20) -> int:
        """Wait for the launcher to exit; fail if it or anything it started outlives it."""
        assert self.process is not None
        process, self.process = self.process, None
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill(family)
            process.wait(timeout=10)
            self._close_log()
            raise AssertionError(f"privia-stack did not exit within {timeout}s:\n{self.log_tail()}")
        self._close_log()
        # Allow the kernel a moment to finish tearing down processes just killed.
        deadline = time.monotonic() + 2
        while True:
            left = still_alive(family)
            strays = [pid for pid in processes_mentioning(str(self.data_dir)) if pid not in left]
            if not (left or strays) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if left or strays:
            described = ", ".join(f"{pid} ({command_name(pid)})" for pid in left + strays)
            self._kill(family)
            for pid in strays:
                _kill_quietly(pid)
            raise AssertionError(f"processes left running after the stack stopped: {described}\n{self.log_tail()}")
        return code

    def kill(self) -> None:
        """Last resort for a broken test: SIGKILL the launcher and everything under it."""
        if self.process is None:
            return
        family = descendants(self.process.pid)
        family[self.process.pid] = 0
        self._kill(family)
        self.process.wait(timeout=10)
        self.process = None
        self._close_log()

    def remove(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no output)"

    def _kill(self, family: dict[int, int]) -> None:
        for pid in family:
            _kill_quietly(pid)

    def _close_log(self) -> None:
        if self._log:
            self._log.close()
            self._log = None


def _with_ctrl_c() -> None:
    """In the launcher, before it starts: SIGINT as a terminal gives it. A shell starts background
    commands with SIGINT ignored, which the pytest running this inherits, and bash can neither
    trap nor reset a signal it was started ignoring: Ctrl-C tests would fail for that alone."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _require_binaries() -> None:
    missing = [name for name in ("privia-fcgi", "privia-relay") if not (BIN_DIR / name).is_file()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not built in {BIN_DIR}; run `swift build -c release` (make test does)")


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def running_stack(extra_env: dict[str, str] | None = None, name: str = "stack"):
    """A started stack for the life of the block; stopped (asserting nothing is left) and removed after."""
    _require_binaries()
    s = Stack(extra_env, name=name).start()
    try:
        yield s
    finally:
        try:
            s.stop()
        finally:
            s.remove()


@pytest.fixture(scope="session")
def stack():
    """The stack most tests share."""
    with running_stack(name="shared") as s:
        yield s


@pytest.fixture
def make_stack():
    """Start a private stack: make_stack({"PRIVIA_WORKERS": "3"}) or make_stack(start=False)."""
    _require_binaries()
    made: list[Stack] = []

    def make(extra_env: dict[str, str] | None = None, *, start: bool = True, name: str = "own") -> Stack:
        s = Stack(extra_env, name=name)
        made.append(s)
        return s.start() if start else s

    yield make
    errors = []
    for s in made:
        try:
            s.stop()
        except AssertionError as error:
            errors.append(str(error))
        finally:
            if not errors:
                s.remove()
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture(scope="session")
def user_token(stack) -> str:
    """A bearer token for a fresh account on the shared stack."""
    email = f"e2e-{uuid.uuid4().hex[:12]}@example.test"
    password = "correct horse battery staple"
    with stack.client() as client:
        r = client.post("/api/auth/signup", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        r = client.post("/api/auth/login", json={"username": email, "password": password})
        assert r.status_code == 200, r.text
        return r.json()["access_token"]
