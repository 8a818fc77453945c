"""Real Privia stacks for the benchmark, started the way `make run` starts them.

A `BenchStack` is scripts/privia-stack (nginx + pool + relay) on two free loopback ports
with its own data directory under /tmp, the approach of tests/e2e/conftest.py. The ceiling
stack is the same launcher and the same nginx config with `PRIVIA_BIN_DIR` pointing at a
directory where `privia-fcgi` is privia-ceiling (the relay stays the real one).

`MemorySampler` watches a stack's process tree in /proc and keeps each process's peak RSS, and
the peak RSS and PSS of each kind of process (`PROCESS_KINDS`) and of the whole stack.
`FakeProvider` is tests/fake_provider/fake_openai.py on a free loopback port, the provider of
the provider-turns scenario.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = REPO / "scripts" / "privia-stack"
# Where the release binaries are; PRIVIA_BIN_DIR as in tests/e2e/conftest.py.
RELEASE = Path(os.environ.get("PRIVIA_BIN_DIR") or REPO / ".build" / "release").resolve()

sys.path.insert(0, str(REPO / "tests" / "e2e"))
from launcher import descendants, launcher_env, wait_until_healthy  # noqa: E402  (shared with the end-to-end suite)
from loopback import free_ports  # noqa: E402


def ceiling_bin_dir(release: Path = RELEASE) -> Path:
    """A directory where privia-fcgi is the ceiling responder and privia-relay the real relay."""
    path = Path(tempfile.mkdtemp(prefix="privia-bench-ceiling-bin-"))
    os.chmod(path, 0o755)
    (path / "privia-fcgi").symlink_to(release / "privia-ceiling")
    (path / "privia-relay").symlink_to(release / "privia-relay")
    return path


# The nginx.conf.template lines that cap how many connections one nginx worker holds.
_WORKER_CONNECTIONS = re.compile(r"^(\s*worker_connections\s+)(\d+)(;)", re.M)
_RLIMIT_NOFILE = re.compile(r"^(\s*worker_rlimit_nofile\s+)(\d+)(;)", re.M)


# The access log's timing field (nginx/snippets/privia/http.conf, log_format privia_json).
_REQUEST_TIME = re.compile(rb'"request_time":([0-9.]+)')


def shipped_nginx_limits() -> tuple[int, int]:
    """(worker_connections, worker_rlimit_nofile) of the repository's nginx template."""
    text = (REPO / "nginx" / "nginx.conf.template").read_text()
    connections = _WORKER_CONNECTIONS.search(text)
    nofile = _RLIMIT_NOFILE.search(text)
    return int(connections.group(2)) if connections else 512, int(nofile.group(2)) if nofile else 0


def overlay_root(worker_connections: int, rlimit_nofile: int) -> Path:
    """A copy of the launcher, nginx/ and web/ whose nginx.conf.template differs from the
    repository's in worker_connections and worker_rlimit_nofile only. Used for the scenarios
    that hold more connections than the shipped limits allow, and reported as such."""
    root = Path(tempfile.mkdtemp(prefix="privia-bench-nginx-"))
    os.chmod(root, 0o755)
    (root / "scripts").mkdir()
    shutil.copy2(LAUNCHER, root / "scripts" / "privia-stack")
    shutil.copytree(REPO / "nginx", root / "nginx")
    (root / "web").symlink_to(REPO / "web")
    template = root / "nginx" / "nginx.conf.template"
    text = _WORKER_CONNECTIONS.sub(rf"\g<1>{worker_connections}\g<3>", template.read_text())
    text = _RLIMIT_NOFILE.sub(rf"\g<1>{rlimit_nofile}\g<3>", text)
    template.write_text(text)
    return root


class BenchStack:
    """One running copy of scripts/privia-stack."""

    def __init__(self, name: str, env: dict[str, str] | None = None, bin_dir: Path = RELEASE,
                 launcher_root: Path = REPO) -> None:
        self.name = name
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"privia-bench-{name}-"))
        os.chmod(self.data_dir, 0o755)  # nginx's workers (www-data) must reach run/
        self.https_port, self.http_port = free_ports(2)
        self.launcher = launcher_root / "scripts" / "privia-stack"
        base = launcher_env(
            self.data_dir, self.https_port, self.http_port, bin_dir, REPO / "Migrations",
            PRIVIA_ALLOWED_ORIGINS=f"https://localhost:{self.https_port}",
            PRIVIA_GRACE_SECONDS="5",
        )
        base.update(env or {})
        self.env = base
        self.process: subprocess.Popen | None = None
        self.log_path = self.data_dir / "stack.out"
        # RSS and PSS per kind of process: "idle" after start, "peak" over the load phases
        # (every MemorySampler on this stack adds to it), "after" once they are over.
        self.memory: dict[str, dict] = {}

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def cafile(self) -> str:
        return str(self.data_dir / "tls" / "cert.pem")

    @property
    def database(self) -> Path:
        return self.data_dir / "privia.db"

    @property
    def fcgi_socket(self) -> str:
        return str(self.data_dir / "run" / "privia-fcgi.sock")

    def setting(self, name: str) -> str:
        return self.env.get(name, "")

    @property
    def access_log(self) -> Path:
        return self.data_dir / "log" / "access.log"

    def access_log_size(self) -> int:
        try:
            return self.access_log.stat().st_size
        except FileNotFoundError:
            return 0

    def request_times_since(self, offset: int, at_least: int, patience: float = 3.0) -> list[float]:
        """nginx's own `$request_time` (seconds, to the millisecond) of every request logged
        after byte `offset` of the access log, once at least `at_least` of them are there:
        the log is written in blocks at least once a second (`buffer=64k flush=1s`), so the
        last requests of a run appear up to a second after it."""
        deadline = time.monotonic() + patience
        times: list[float] = []
        position, partial = offset, b""
        while True:
            try:
                with open(self.access_log, "rb") as log:
                    log.seek(position)
                    chunk = log.read()
            except FileNotFoundError:
                chunk = b""
            position += len(chunk)
            lines = (partial + chunk).split(b"\n")
            partial = lines.pop()  # a line not yet written to its end
            for line in lines:
                found = _REQUEST_TIME.search(line)
                if found:
                    times.append(float(found.group(1)))
            if len(times) >= at_least or time.monotonic() > deadline:
                return times
            time.sleep(0.1)

    def start(self, timeout: float = 120.0) -> "BenchStack":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([str(self.launcher)], cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        problem = wait_until_healthy(self.process, self.url, timeout)
        if problem is None:
            return self
        self.stop()
        raise RuntimeError(f"{self.name}: {problem}:\n{self.log_tail()}")

    def stop(self, keep_data: bool = False) -> None:
        """SIGTERM to the launcher (it stops nginx, relay and pool in order), SIGKILL after 40 s."""
        if self.process is not None:
            family = set(descendants(self.process.pid)) | {self.process.pid}
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    pass
            for pid in family:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            if self.process.poll() is None:
                self.process.wait(timeout=10)
            self.process = None
        if not keep_data and not os.environ.get("BENCH_KEEP_DATA"):
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no output)"

    def note_memory(self, moment: str) -> None:
        """Records the stack's memory as `moment` ("idle" or "after"): at rest, so the caller
        waits a moment after the last request first."""
        kinds = kinds_of(self.services())
        self.memory[moment] = memory_by_kind(kinds)
        self.memory[moment]["total"]["distinct_mib"] = distinct_pages_mib(kinds)

    def services(self) -> dict[int, str]:
        """pid -> role ("nginx", "pool", "relay") of every live process of the stack's services."""
        if self.process is None:
            return {}
        found = {}
        for pid in descendants(self.process.pid):
            role = process_role(pid)
            if role:
                found[pid] = role
        return found


class FakeProvider:
    """The fake OpenAI-compatible provider, streaming at full speed, on a free loopback port.
    It keeps only its last requests' records (a run makes tens of thousands) and counts the
    TCP connections it accepted."""

    SCRIPT = REPO / "tests" / "fake_provider" / "fake_openai.py"

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="privia-bench-provider-"))
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> "FakeProvider":
        port_file = self.directory / "port"
        self.process = subprocess.Popen(
            [sys.executable, str(self.SCRIPT), "--port", "0", "--port-file", str(port_file), "--exit-with-stdin",
             "--keep-requests", "1000"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=open(self.directory / "provider.out", "ab"))
        deadline = time.monotonic() + timeout
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the fake provider did not start: {(self.directory / 'provider.out').read_text()}")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        return self

    def models_file(self, behaviour: str) -> Path:
        """A model catalog whose one (default) model is `behaviour` on this provider."""
        path = self.directory / "models.json"
        path.write_text(json.dumps({
            "providers": [{"id": "fake", "base_url": f"{self.url}/v1"}],
            "models": [{"id": "fake", "provider": "fake", "model": behaviour, "display_name": "Fake"}],
            "default_model": "fake",
        }))
        return path

    def connections(self) -> dict:
        """{"accepted", "carried_completions", "completions"} so far."""
        with urllib.request.urlopen(self.url + "/_connections", timeout=10) as response:
            return json.loads(response.read())

    def cpu_seconds(self) -> float:
        return (cpu_seconds(self.process.pid) or 0.0) if self.process else 0.0

    def stop(self) -> None:
        if self.process is not None:
            self.process.stdin.close()  # --exit-with-stdin
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)


# ---------------------------------------------------------------------------
# Processes, from /proc
# ---------------------------------------------------------------------------


def process_role(pid: int) -> str | None:
    """nginx (master and workers), pool (master and workers, also the ceiling's), relay."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    first = argv[0].decode(errors="replace")
    if first.startswith("nginx:"):
        return "nginx"
    name = os.path.basename(first)
    if name in ("privia-fcgi", "privia-ceiling"):
        return "pool"
    if name == "privia-relay":
        return "relay"
    return None


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# The kinds of process a stack is made of, in the order the reports list them.
PROCESS_KINDS = ("nginx master", "nginx workers", "pool master", "pool workers", "relay")


def process_kind(pid: int, role: str) -> str:
    """Which of PROCESS_KINDS a process of `role` is (from its command line)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        argv = []
    if role == "nginx":
        return "nginx master" if argv and b"master process" in argv[0] else "nginx workers"
    if role == "pool":
        return "pool workers" if b"--worker" in argv[1:] else "pool master"
    return role


def rss_pss_kib(pid: int) -> tuple[int, int]:
    """(Rss, Pss) in KiB from /proc/PID/smaps_rollup, or zeros if the process is gone. PSS
    shares each page among the processes that map it, so a stack's PSS adds up to what it
    holds, where the RSS of processes sharing a library counts its pages once in each."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return rss, pss


def kinds_of(services: dict[int, str]) -> dict[int, str]:
    """pid -> kind for `services` (pid -> role)."""
    return {pid: process_kind(pid, role) for pid, role in services.items()}


def memory_by_kind(kinds: dict[int, str], readings: dict[int, tuple[int, int]] | None = None) -> dict:
    """{kind: {processes, rss_mib, pss_mib}} for the live processes of `kinds` (pid -> kind),
    plus "total"; `readings` (pid -> (rss, pss) KiB) if they were just read."""
    sums = {kind: [0, 0, 0] for kind in PROCESS_KINDS}
    for pid, kind in kinds.items():
        rss, pss = readings[pid] if readings is not None else rss_pss_kib(pid)
        if not rss:
            continue
        entry = sums.setdefault(kind, [0, 0, 0])
        entry[0] += 1
        entry[1] += rss
        entry[2] += pss
    out = {kind: {"processes": n, "rss_mib": round(rss / 1024, 1), "pss_mib": round(pss / 1024, 1)}
           for kind, (n, rss, pss) in sums.items()}
    out["total"] = {"processes": sum(n for n, _, _ in sums.values()),
                    "rss_mib": round(sum(r for _, r, _ in sums.values()) / 1024, 1),
                    "pss_mib": round(sum(p for _, _, p in sums.values()) / 1024, 1)}
    return out


def distinct_pages_mib(pids) -> float | None:
    """The physical memory the processes hold between them, each page counted once: the page
    frames behind their resident pages (/proc/PID/pagemap). None where the kernel hides frame
    numbers (from all but root)."""
    frames: set[int] = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
                for line in maps:
                    fields = line.split()
                    if fields[-1] in ("[vsyscall]", "[vvar]", "[vvar_vclock]", "[vdso]"):
                        continue
                    low, high = (int(x, 16) for x in fields[0].split("-"))
                    pagemap.seek(low // 4096 * 8)
                    for (entry,) in struct.iter_unpack("<Q", pagemap.read((high - low) // 4096 * 8)):
                        if entry >> 63:  # present; bits 0-54 are the frame number
                            frames.add(entry & ((1 << 55) - 1))
        except OSError:
            continue
    if not frames or frames == {0}:
        return None
    return round(len(frames) * 4096 / 2**20, 1)


def add_peak(peaks: dict, sample: dict) -> None:
    """Raises `peaks` (a memory_by_kind result, or empty) to `sample` where it is higher,
    field by field: the peak RSS and the peak PSS of a kind may come from different samples."""
    for kind, figures in sample.items():
        mine = peaks.setdefault(kind, {"processes": 0, "rss_mib": 0.0, "pss_mib": 0.0})
        for field, value in figures.items():
            mine[field] = max(mine[field], value)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu_ticks() -> tuple[int, int]:
    """(steal, total) clock ticks of all CPUs since boot, from /proc/stat. Steal is time a
    virtual CPU wanted to run and the hypervisor ran something else."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return 0, 0
    # user nice system idle iowait irq softirq steal (guest time is counted in user already)
    return fields[7], sum(fields)


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB, or zeros if the process is gone."""
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


class MemorySampler:
    """Samples the RSS and CPU time of a stack's processes every `interval` seconds while running.

    `peaks()` gives, per role, the peak of the role's summed RSS over the samples, the
    largest process's peak (max of sampled VmRSS; VmHWM, the kernel's high-water mark since
    the process started, is kept in `process_peak`), and the CPU seconds the role used.
    `kind_peak` holds the peak RSS and PSS (smaps_rollup) of each kind of process and of the
    stack's total, also added to the stack's own "peak"."""

    def __init__(self, stack: BenchStack, interval: float = 0.25) -> None:
        self.stack, self.interval = stack, interval
        self.role_peak: dict[str, int] = {}
        self.process_peak: dict[int, dict] = {}
        self.kind_peak: dict[str, dict] = {}
        self._services: dict[int, str] = {}
        self._kinds: dict[int, str] = {}
        self._services_at = 0.0
        self.cpu_first: dict[int, tuple[str, float]] = {}
        self.cpu_last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "MemorySampler":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
        add_peak(self.stack.memory.setdefault("peak", {}), self.kind_peak)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        # Walking all of /proc for the process tree costs more than reading a few status
        # files: do it once a second (a restarted worker is picked up within that).
        if time.monotonic() - self._services_at > 1.0:
            self._services, self._services_at = self.stack.services(), time.monotonic()
            self._kinds = kinds_of(self._services)
        sums: dict[str, int] = {}
        readings: dict[int, tuple[int, int]] = {}
        for pid, role in self._services.items():
            rss, hwm = memory_kib(pid)
            if not rss:
                continue
            readings[pid] = rss_pss_kib(pid)
            sums[role] = sums.get(role, 0) + rss
            cpu = cpu_seconds(pid)
            if cpu is not None:
                self.cpu_first.setdefault(pid, (role, cpu))
                self.cpu_last[pid] = cpu
            peak = self.process_peak.setdefault(pid, {"role": role, "rss_kib": 0, "hwm_kib": 0})
            peak["rss_kib"] = max(peak["rss_kib"], rss)
            peak["hwm_kib"] = max(peak["hwm_kib"], hwm)
        for role, total in sums.items():
            self.role_peak[role] = max(self.role_peak.get(role, 0), total)
        add_peak(self.kind_peak, memory_by_kind({pid: self._kinds[pid] for pid in readings}, readings))

    def peaks(self) -> dict:
        by_role: dict[str, dict] = {}
        for role in ("nginx", "pool", "relay"):
            processes = [p for p in self.process_peak.values() if p["role"] == role]
            by_role[role] = {
                "processes": len(processes),
                "peak_total_mib": round(self.role_peak.get(role, 0) / 1024, 1),
                "peak_process_mib": round(max((p["rss_kib"] for p in processes), default=0) / 1024, 1),
                "cpu_seconds": round(sum(self.cpu_last[pid] - first for pid, (r, first) in self.cpu_first.items()
                                         if r == role), 2),
            }
        return by_role
