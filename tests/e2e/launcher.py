"""Running scripts/privia-stack on loopback: shared by the end-to-end suite (conftest.py)
and the benchmark (bench/stacks.py), so both start the stack the same way."""

from __future__ import annotations

import os
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path


def launcher_env(data_dir: Path, https_port: int, http_port: int, bin_dir: Path, migrations: Path,
                 **settings: str) -> dict[str, str]:
    """This process's environment without any PRIVIA_* of the caller's, plus a stack's own:
    its data directory, ports and binaries, development mode, and `settings` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVIA_")}
    env.update(
        PRIVIA_DATA_DIR=str(data_dir),
        PRIVIA_HTTPS_PORT=str(https_port),
        PRIVIA_HTTP_PORT=str(http_port),
        PRIVIA_BIN_DIR=str(bin_dir),
        PRIVIA_MIGRATIONS_DIR=str(migrations),
        PRIVIA_ENV="development",
        # Tests and the bench sign users up from 127.0.0.1 in quick succession; the production
        # default (30r/m) would answer 429. test_login_is_rate_limited_with_429 checks the limit.
        PRIVIA_AUTH_RATE="50r/s",
    )
    env.update(settings)
    return env


def wait_until_healthy(process: subprocess.Popen, url: str, timeout: float) -> str | None:
    """Polls `url`/api/health until it answers 200 (None), the launcher exits, or `timeout`
    passes; then returns what went wrong."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"privia-stack exited with {process.returncode}"
        try:
            with urllib.request.urlopen(f"{url}/api/health", context=context, timeout=2) as response:
                if response.status == 200:
                    return None
                last = str(response.status)
        except OSError as error:  # urllib's HTTPError (a 503 while degraded) is one too
            last = repr(error)
        time.sleep(0.1)
    return f"not healthy after {timeout}s (last: {last})"


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, start time in clock ticks) for every live process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z":  # a zombie has ended; only its parent's wait is missing
            continue
        table[int(entry)] = (int(fields[1]), int(fields[19]))
    return table


def descendants(root: int) -> dict[int, int]:
    """pid -> start time of every live descendant of `root`."""
    table = process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = table[child][1]
            todo.append(child)
    return found
