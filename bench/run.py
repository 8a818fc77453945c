#!/usr/bin/env python3
"""`make bench`: how fast Privia is, side by side with the ceiling of its own shape.

Starts real stacks on loopback (scripts/privia-stack, fresh data directories), fills them
with realistic data, runs the nine scenarios of bench/README.md, prints one table and writes
bench/results/latest.json, a timestamped copy, latest.csv and latest.md (the table in Markdown).

Settings (environment):
  BENCH_RUNS=3            runs per measurement; every figure is the median
  BENCH_DURATION=10       seconds per wrk run and per WebSocket turns run
  BENCH_CONNECTIONS=64    wrk connections (scenarios 1-5, 9)
  BENCH_STREAMS=100,500,1000,2000      scenario 6 stream counts
  BENCH_SOCKETS=1000,5000,10000        scenario 7 idle socket counts
  BENCH_SOCKET_TURNS=100               scenario 7 sockets carrying chat turns
  BENCH_PROVIDER_TOKENS=32             scenario 5 through a provider: tokens per answer of the fake
  BENCH_STREAM_DELAY_MS=47             stub delay per token in scenarios 6 and 8 (32 tokens: 1.5 s)
  BENCH_STREAM_RAMP_MS=1000            scenario 6 sends its N requests evenly over this time
                                       (shorter than a stream, so all N are held at once); 0: at once
  BENCH_SCALE_MESSAGES=1000000         scenario 9 database size (across BENCH_SCALE_USERS=10000)
  BENCH_PACED_PERCENTS=25,50           scenario 3 also below saturation: the list of 20 and the
                                       ceiling at these percentages of the ceiling's rate
  BENCH_WORKERS / BENCH_THREADS        pool settings for scenarios 1-5, 7, 9 (default: Privia's)
  BENCH_NGINX_OVERLAY=auto             auto: raise nginx's connection limits in a temporary
                                       copy of the config when a scenario needs more than the
                                       shipped ones (reported); off: never
  BENCH_ONLY=                          comma list of groups: reads, query, provider-turns,
                                       socket-turns, latency, streams, sockets-held
  BENCH_RESULTS_DIR=bench/results

  --smoke       each scenario for about a second, small data; exit 1 on any error
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
import seeding  # noqa: E402
from stacks import (RELEASE, REPO, BenchStack, FakeProvider, MemorySampler, add_peak, ceiling_bin_dir,  # noqa: E402
                    machine_cpu_ticks, overlay_root, shipped_nginx_limits)

BENCH = Path(__file__).resolve().parent
LUA = BENCH / "wrk" / "privia.lua"
DRIVERS = BENCH / "drivers.py"
# The ceiling's figures each paced run of the list keeps, as ceiling_<name>, from the ceiling's
# run at the same rate just before it.
PACED_CEILING_FIGURES = ("rps", "p50_ms", "p99_ms", "nginx_p99_ms")
# Scenario 8: rounds of turns per run, and turns per path in a round (a light load: latency, not queueing).
LATENCY_ROUNDS = 8
LATENCY_CONCURRENCY = 5


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def env_list(name: str, default: str) -> list[int]:
    return [int(x) for x in (os.environ.get(name) or default).split(",") if x.strip()]


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


class Settings:
    def __init__(self, smoke: bool) -> None:
        self.smoke = smoke
        self.runs = env_int("BENCH_RUNS", 1 if smoke else 3)
        self.duration = env_int("BENCH_DURATION", 1 if smoke else 10)
        self.connections = env_int("BENCH_CONNECTIONS", 16 if smoke else 64)
        self.wrk_threads = env_int("BENCH_WRK_THREADS", 2)
        self.streams = env_list("BENCH_STREAMS", "20" if smoke else "100,500,1000,2000")
        self.sockets = env_list("BENCH_SOCKETS", "50" if smoke else "1000,5000,10000")
        self.socket_turns = env_int("BENCH_SOCKET_TURNS", 10 if smoke else 100)
        self.provider_tokens = env_int("BENCH_PROVIDER_TOKENS", 32)
        self.stream_delay = env_int("BENCH_STREAM_DELAY_MS", 10 if smoke else 47)
        self.stream_ramp = env_int("BENCH_STREAM_RAMP_MS", 200 if smoke else 1000)
        self.scale_messages = env_int("BENCH_SCALE_MESSAGES", 20_000 if smoke else 1_000_000)
        self.scale_users = env_int("BENCH_SCALE_USERS", 200 if smoke else 10_000)
        self.list_big = env_int("BENCH_LIST_CONVERSATIONS", 10_000)
        self.paced_percents = env_list("BENCH_PACED_PERCENTS", "25" if smoke else "25,50")
        self.get_big = env_int("BENCH_GET_MESSAGES", 5_000)
        self.hold_seconds = env_int("BENCH_HOLD_SECONDS", 1 if smoke else 5)
        # Seconds a stack rests before its memory is noted at idle (after start) and after its
        # load phases: the pool's allocator returns freed pages after a second of decay.
        self.memory_settle = 1 if smoke else 2
        self.workers = os.environ.get("BENCH_WORKERS", "")
        self.threads = os.environ.get("BENCH_THREADS", "")
        self.overlay = os.environ.get("BENCH_NGINX_OVERLAY", "auto")
        only = os.environ.get("BENCH_ONLY", "")
        self.only = {x.strip() for x in only.split(",") if x.strip()}
        self.results_dir = Path(os.environ.get("BENCH_RESULTS_DIR") or BENCH / "results")

    def wants(self, group: str) -> bool:
        return not self.only or group in self.only

    def pool_env(self) -> dict[str, str]:
        env = {}
        if self.workers:
            env["PRIVIA_WORKERS"] = self.workers
        if self.threads:
            env["PRIVIA_THREADS"] = self.threads
        return env

    def as_json(self) -> dict:
        return {k: (sorted(v) if isinstance(v, set) else str(v) if isinstance(v, Path) else v)
                for k, v in vars(self).items()}


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------


def wrk(settings: Settings, stack: BenchStack, path: str, token: str = "", *, question: str | None = None,
        conversations: list[str] | None = None, rate: float | None = None) -> dict:
    """One wrk run: at saturation, or with `rate` requests a second arriving as a Poisson process."""
    env = dict(os.environ, BENCH_METHOD="POST" if question else "GET", BENCH_PATH=path, BENCH_TOKEN=token)
    if rate:
        env.update(BENCH_RATE=f"{rate:.1f}", BENCH_THREADS=str(settings.wrk_threads))
    if question:
        env["BENCH_QUESTION"] = question
        env["BENCH_CONVERSATIONS"] = ",".join(conversations or [])
    command = ["wrk", f"-t{settings.wrk_threads}", f"-c{settings.connections}", f"-d{settings.duration}s",
               "--timeout", "30s", "--latency", "-s", str(LUA), stack.url + "/"]
    log_offset = stack.access_log_size()
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=settings.duration + 90)
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}")
    raw = json.loads(line[len("BENCH_JSON "):])
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    # The same requests as nginx timed them, from its first read of a request to its log line
    # after the last byte sent: what the server side took, without the client's own waits
    # (wrk shares the cores) or the time a request sat in the socket before nginx read it.
    served = [logged * 1000 for logged in stack.request_times_since(log_offset, raw["requests"])]
    return {"rps": raw["requests"] / seconds, "ok_rps": (raw["requests"] - raw["status_errors"]) / seconds,
            "p50_ms": raw["p50_us"] / 1000, "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000,
            "nginx_p50_ms": _percentile(served, 50), "nginx_p99_ms": _percentile(served, 99),
            "nginx_requests": len(served),
            "errors": errors, "requests": raw["requests"], "bytes": raw["bytes"], "raw": raw}


def driver(name: str, config: dict, timeout: float) -> dict:
    """Runs one of drivers.py's drivers in its own process and returns its JSON result."""
    out = subprocess.run([sys.executable, str(DRIVERS), name], input=json.dumps(config), capture_output=True,
                         text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"driver {name} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class Scenario:
    """One row of the table: the runs of one measurement, their medians, memory peaks."""

    def __init__(self, key: str, number: str, title: str, stack: BenchStack | None, unit: str = "req/s") -> None:
        self.key, self.number, self.title, self.unit = key, number, title, unit
        self.stack = stack
        self.runs: list[dict] = []
        self.memory: dict = {}
        # Peak RSS and PSS per kind of process (stacks.PROCESS_KINDS) and in total over the runs.
        self.memory_kinds: dict = {}
        self.notes: list[str] = []
        self.summary: dict = {}

    def measure(self, run) -> dict:
        """One run, with the stack's memory and CPU sampled throughout; the load generator's
        CPU (wrk or a driver, a child process) is kept as `client_cpu_seconds`, and the share
        of the machine's CPU time the hypervisor took (steal) as `steal_share`."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        steal, ticks = machine_cpu_ticks()
        started = time.monotonic()
        with MemorySampler(self.stack) as sampler:
            result = run()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        steal_after, ticks_after = machine_cpu_ticks()
        result["wall_seconds"] = round(time.monotonic() - started, 2)
        result["steal_share"] = round((steal_after - steal) / (ticks_after - ticks), 3) if ticks_after > ticks else None
        result["client_cpu_seconds"] = round(after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime, 2)
        peaks = sampler.peaks()
        add_peak(self.memory_kinds, sampler.kind_peak)
        result["cpu_seconds"] = {role: peak["cpu_seconds"] for role, peak in peaks.items()}
        self.runs.append(result)
        for role, peak in peaks.items():
            mine = self.memory.setdefault(role, {k: v for k, v in peak.items() if k != "cpu_seconds"})
            for field in ("processes", "peak_total_mib", "peak_process_mib"):
                mine[field] = max(mine[field], peak[field])
        return result

    def as_json(self) -> dict:
        return {"key": self.key, "scenario": self.number, "title": self.title, "unit": self.unit,
                "summary": self.summary, "memory_mib": self.memory, "memory_kinds_mib": self.memory_kinds,
                "notes": self.notes, "runs": self.runs}


# ---------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------


class Bench:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.scenarios: list[Scenario] = []
        self.stacks: list[BenchStack] = []
        self.nginx: dict = {}
        self.temp_dirs: list[Path] = []
        # stack name -> its memory per kind of process: idle, peak under load, after (MiB).
        self.memory: dict[str, dict] = {}

    def scenario(self, *args, **kwargs) -> Scenario:
        scenario = Scenario(*args, **kwargs)
        self.scenarios.append(scenario)
        return scenario

    def start(self, stacks: list[BenchStack]) -> None:
        self.stacks += stacks
        with concurrent.futures.ThreadPoolExecutor(len(stacks)) as pool:
            for future in [pool.submit(stack.start) for stack in stacks]:
                future.result()
        time.sleep(self.s.memory_settle)
        for stack in stacks:
            stack.note_memory("idle")
            self.memory[stack.name] = stack.memory

    def stop(self, stack: BenchStack) -> None:
        if stack in self.stacks:
            self.stacks.remove(stack)
        if stack.process is not None and stack.memory.get("peak"):
            time.sleep(self.s.memory_settle)
            stack.note_memory("after")
        stack.stop()

    def stop_all(self) -> None:
        for stack in list(self.stacks):
            try:
                self.stop(stack)
            except Exception as error:  # a failed stop must not hide the results
                say(f"stopping {stack.name}: {error}")

    # -- data ------------------------------------------------------------------

    # The user measured in scenarios 3, 4 and 9: 20 conversations, the first of 50 messages.
    PROBE_SHAPE = [50] + [10] * 19

    def seed_small(self, stack: BenchStack) -> dict:
        api = seeding.API(stack.url, stack.cafile)
        accounts = {name: api.account(name) for name in ("list20", "list10k", "writer", "sockets")}
        seeder = seeding.Seeder(str(stack.database))
        seeding.conversation_set(seeder, accounts["list10k"], [2] * self.s.list_big)
        seeding.conversation_set(seeder, accounts["writer"], [4] * 256)
        seeding.conversation_set(seeder, accounts["sockets"], [2] * self.s.socket_turns)
        seeding.background(seeder, users=200, conversations=10, messages=200 * 10 * 10,
                           among=[(accounts["list20"], self.PROBE_SHAPE)])
        total = seeder.message_count
        seeder.close()
        say(f"small database: {total} messages seeded")
        return accounts

    def seed_long(self, stack: BenchStack):
        account = seeding.API(stack.url, stack.cafile).account("get5000")
        seeder = seeding.Seeder(str(stack.database))
        seeding.conversation_set(seeder, account, [self.s.get_big])
        seeding.background(seeder, users=200, conversations=10, messages=200 * 10 * 10)
        seeder.close()
        return account

    def seed_scale(self, stack: BenchStack) -> dict:
        api = seeding.API(stack.url, stack.cafile)
        accounts = {"list20": api.account("list20")}
        seeder = seeding.Seeder(str(stack.database))
        seeding.background(seeder, users=self.s.scale_users - 1, conversations=10,
                           messages=self.s.scale_messages - sum(self.PROBE_SHAPE),
                           among=[(accounts["list20"], self.PROBE_SHAPE)])
        total = seeder.message_count
        seeder.close()
        say(f"scale database: {total} messages across {self.s.scale_users} users seeded")
        return accounts

    def seed_held(self, stack: BenchStack, conversations: int) -> list:
        api = seeding.API(stack.url, stack.cafile)
        accounts = [api.account(f"streams{i}") for i in range(2)]
        seeder = seeding.Seeder(str(stack.database))
        for account in accounts:
            seeding.conversation_set(seeder, account, [2] * (conversations // 2 + 1))
        seeder.close()
        return accounts

    # -- scenarios -------------------------------------------------------------

    def run(self) -> None:
        s = self.s
        pool = s.pool_env()
        wants_reads = s.wants("reads")
        if wants_reads or s.wants("query") or s.wants("socket-turns"):
            small = BenchStack("small", pool)
            if wants_reads:
                ceiling_bin = ceiling_bin_dir()
                self.temp_dirs.append(ceiling_bin)
                ceiling = BenchStack("ceiling", pool, bin_dir=ceiling_bin)
                scale = BenchStack("scale", pool)
                # The 5,000-message conversation on a stack of its own: 64 answers of 2 MB at
                # once grow the pool's heap, and that memory would show in every later row.
                long = BenchStack("long", pool)
            self.start([ceiling, small, scale, long] if wants_reads else [small])
            say("stacks up; seeding")
            accounts = self.seed_small(small)
            if wants_reads:
                accounts["get5000"] = self.seed_long(long)
                scale_accounts = self.seed_scale(scale)
                self.reads(ceiling, small, scale, long, accounts, scale_accounts)
                for stack in (ceiling, scale, long):
                    self.stop(stack)
            if s.wants("query"):
                self.query(small, accounts["writer"])
            if s.wants("socket-turns"):
                self.socket_turns(small, accounts["sockets"])
            self.stop(small)
        if s.wants("provider-turns"):
            self.provider_turns()
        if s.wants("streams") or s.wants("latency") or s.wants("sockets-held"):
            self.held_scenarios()

    def reads(self, ceiling, small, scale, long, accounts, scale_accounts) -> None:
        s = self.s
        list20, list10k, get5000 = accounts["list20"], accounts["list10k"], accounts["get5000"]
        scale20 = scale_accounts["list20"]
        plan = [
            (self.scenario("ceiling", "1", "ceiling: constant JSON, same pool and nginx", ceiling),
             "/api/conversations", list20.token),
            (self.scenario("health", "2", "GET /api/health", small), "/api/health", ""),
            (self.scenario("list20", "3", "GET /api/conversations (20)", small), "/api/conversations", list20.token),
            (self.scenario("list10k", "3", f"GET /api/conversations?limit=50 (of {s.list_big:,})", small),
             "/api/conversations?limit=50", list10k.token),
            (self.scenario("get50", "4", "GET /api/conversations/{id} (50 messages)", small),
             f"/api/conversations/{list20.conversations[0]}", list20.token),
            (self.scenario("get5000", "4", f"GET /api/conversations/{{id}} ({s.get_big:,} messages)", long),
             f"/api/conversations/{get5000.conversations[0]}", get5000.token),
            (self.scenario("scale_list20", "9", "scale: GET /api/conversations (20)", scale),
             "/api/conversations", scale20.token),
            (self.scenario("scale_get50", "9", "scale: GET /api/conversations/{id} (50 messages)", scale),
             f"/api/conversations/{scale20.conversations[0]}", scale20.token),
        ]
        # Each scenario right after a ceiling run of its own, so the two see the same machine:
        # a noisy neighbour that comes and goes within a run would otherwise skew a ratio
        # taken against one ceiling measured a minute earlier.
        ceiling, ceiling_path, ceiling_token = plan[0]
        for run in range(s.runs):
            for scenario, path, token in plan[1:]:
                say(f"run {run + 1}/{s.runs}: {scenario.title}, after the ceiling")
                ceiling_rps = ceiling.measure(lambda: wrk(s, ceiling.stack, ceiling_path, ceiling_token))["rps"]
                scenario.measure(lambda: wrk(s, scenario.stack, path, token))["ceiling_rps"] = ceiling_rps
        for scenario, _, _ in plan:
            self.summarize_wrk(scenario)
            if scenario is not ceiling:
                ratios = [r["rps"] / r["ceiling_rps"] for r in scenario.runs if r["ceiling_rps"]]
                scenario.summary["of_ceiling"] = median(ratios)
        by_key = {sc.key: sc for sc, _, _ in plan}
        for key, base in (("scale_list20", "list20"), ("scale_get50", "get50")):
            big, small_one = by_key[key].summary, by_key[base].summary
            big["vs_small_p50"] = big["p50_ms"] / small_one["p50_ms"] if small_one["p50_ms"] else None
            big["vs_small_p99"] = big["p99_ms"] / small_one["p99_ms"] if small_one["p99_ms"] else None
        by_key["scale_list20"].notes.append(
            f"{self.s.scale_messages:,} messages across {self.s.scale_users:,} users")
        self.paced_lists(ceiling, small, list20.token)

    def paced_lists(self, ceiling: Scenario, small: BenchStack, token: str) -> None:
        """Scenario 3 below saturation. At saturation 64 connections queue behind each other,
        so the list's latency there is mostly Little's law (64 / rate); here requests arrive
        as a Poisson process at a share of the ceiling's rate, and each run of the list comes
        right after the ceiling at the same rate, whose latency is the shape's own."""
        s = self.s
        ceiling_rps = ceiling.summary.get("rate")
        if not ceiling_rps:
            return
        plan = [(self.scenario(f"list20_paced_{percent}", "3",
                               f"GET /api/conversations (20) at {percent}% of the ceiling's rate", small),
                 ceiling_rps * percent / 100) for percent in s.paced_percents]
        for run in range(s.runs):
            for scenario, rate in plan:
                say(f"run {run + 1}/{s.runs}: {scenario.title} ({rate:,.0f} req/s), after the ceiling at that rate")
                shape = wrk(s, ceiling.stack, "/api/conversations", token, rate=rate)
                result = scenario.measure(lambda: wrk(s, small, "/api/conversations", token, rate=rate))
                result.update({f"ceiling_{key}": shape[key] for key in PACED_CEILING_FIGURES},
                              offered_rps=rate, ceiling_errors=shape["errors"])
        for scenario, rate in plan:
            self.summarize_wrk(scenario)
            runs = scenario.runs
            scenario.summary.update({f"ceiling_{key}": median([r[f"ceiling_{key}"] for r in runs])
                                     for key in PACED_CEILING_FIGURES},
                                    of_ceiling=median([r["rps"] for r in runs]) / ceiling_rps, offered_rps=rate)
            scenario.summary["errors"] += sum(r["ceiling_errors"] for r in runs)

    @staticmethod
    def summarize_wrk(scenario: Scenario) -> None:
        runs = scenario.runs
        scenario.summary.update(
            rate=median([r["ok_rps"] for r in runs]), p50_ms=median([r["p50_ms"] for r in runs]),
            p99_ms=median([r["p99_ms"] for r in runs]), errors=sum(r["errors"] for r in runs),
            nginx_p50_ms=median([r.get("nginx_p50_ms") for r in runs]),
            nginx_p99_ms=median([r.get("nginx_p99_ms") for r in runs]),
            response_bytes=round(runs[0]["bytes"] / max(1, runs[0]["requests"])) if runs else None)

    def query(self, small: BenchStack, writer) -> None:
        s = self.s
        scenario = self.scenario("query", "5", f"POST /api/query, {s.connections} conns, half new conversations",
                                 small, unit="turns/s")
        for run in range(s.runs):
            say(f"run {run + 1}/{s.runs}: {scenario.title}")
            scenario.measure(lambda: wrk(s, small, "/api/query", writer.token,
                                         question="How fast can Privia write a whole turn?",
                                         conversations=writer.conversations))
        self.summarize_wrk(scenario)

    def provider_turns(self) -> None:
        """Scenario 5's turns through the OpenAI-compatible engine: a stack whose one model is
        the fake provider on loopback (plain HTTP), answering BENCH_PROVIDER_TOKENS tokens at
        full speed. Besides the stack's figures, each run keeps the provider's CPU time and how
        many new connections it accepted for how many turns."""
        s = self.s
        provider = FakeProvider().start()
        try:
            models = provider.models_file(f"stream:tokens={s.provider_tokens}")
            stack = BenchStack("provider", {**s.pool_env(), "PRIVIA_MODELS_FILE": str(models)})
            self.start([stack])
            writer = seeding.API(stack.url, stack.cafile).account("writer")
            seeder = seeding.Seeder(str(stack.database))
            seeding.conversation_set(seeder, writer, [4] * 256)
            seeder.close()
            scenario = self.scenario("provider_query", "5",
                                     f"POST /api/query via an OpenAI-compatible provider, {s.connections} conns",
                                     stack, unit="turns/s")

            def one_run() -> dict:
                connections, cpu = provider.connections(), provider.cpu_seconds()
                result = wrk(s, stack, "/api/query", writer.token, question="How fast can Privia write a whole turn?",
                             conversations=writer.conversations)
                after = provider.connections()
                result.update(provider_cpu_seconds=round(provider.cpu_seconds() - cpu, 2),
                              provider_new_connections=after["carried_completions"] - connections["carried_completions"],
                              provider_completions=after["completions"] - connections["completions"])
                return result

            for run in range(s.runs):
                say(f"run {run + 1}/{s.runs}: {scenario.title}")
                scenario.measure(one_run)
            self.summarize_wrk(scenario)
            runs = scenario.runs
            scenario.summary.update(
                provider_cpu_share=median([r["provider_cpu_seconds"] / r["wall_seconds"] for r in runs]),
                provider_new_connections=median([r["provider_new_connections"] for r in runs]),
                provider_completions=median([r["provider_completions"] for r in runs]))
            scenario.notes.append(f"the fake provider (Python, plain HTTP on loopback) answering {s.provider_tokens} "
                                  "tokens at full speed")
            self.stop(stack)
        finally:
            provider.stop()

    def socket_turns(self, small: BenchStack, account) -> None:
        s = self.s
        scenario = self.scenario("socket_turns", "7", f"chat turns over {s.socket_turns} WebSockets", small,
                                 unit="turns/s")
        config = {"port": small.https_port, "cafile": small.cafile, "tokens": [account.token],
                  "conversations": account.conversations, "n": s.socket_turns, "duration": s.duration}
        for run in range(s.runs):
            say(f"run {run + 1}/{s.runs}: {scenario.title}")
            scenario.measure(lambda: driver("socket-turns", config, timeout=s.duration + 120))
        runs = scenario.runs
        scenario.summary.update(rate=median([r["turns_per_second"] for r in runs]),
                                p50_ms=median([r["p50_ms"] for r in runs]), p99_ms=median([r["p99_ms"] for r in runs]),
                                errors=sum(r["errors"] for r in runs),
                                client_cpu_share=median([r["client_cpu_share"] for r in runs]))

    def held_scenarios(self) -> None:
        """Scenarios 6, 7 (idle sockets) and 8 on one stack with a slow stub and enough threads."""
        s = self.s
        most_streams = max(s.streams) if s.wants("streams") else 0
        most_sockets = max(s.sockets) if s.wants("sockets-held") else 0
        workers = int(s.workers or 1)  # Privia's default
        # Each held stream holds one pool thread: N plus a margin for everything else.
        threads = max(int(s.threads or 512), -(-int(most_streams * 1.1 + 64) // workers))
        env = {"PRIVIA_STUB_DELAY_MS": str(s.stream_delay), "PRIVIA_WORKERS": str(workers),
               "PRIVIA_THREADS": str(min(threads, 4096))}
        # Each held stream or socket is two nginx connections (client + upstream); nginx's
        # workers need not share them evenly, so allow one worker 70% of them.
        need = int(max(most_streams, most_sockets) * 2 * 0.7) + 512
        shipped_connections, shipped_nofile = shipped_nginx_limits()
        root = REPO
        if need > shipped_connections and s.overlay != "off":
            connections = 1 << (need - 1).bit_length()
            # nginx cannot raise its workers' limit above the hard one it inherits (it logs
            # an alert and keeps the old one), so ask for no more than that.
            nofile = min(connections * 2, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
            root = overlay_root(connections, nofile)
            self.temp_dirs.append(root)
            self.nginx = {"overlay": True, "worker_connections": connections, "worker_rlimit_nofile": nofile,
                          "shipped": [shipped_connections, shipped_nofile]}
            say(f"nginx: worker_connections {connections}, worker_rlimit_nofile {nofile} for the held "
                f"scenarios (shipped: {shipped_connections}, {shipped_nofile})")
        held = BenchStack("held", env, launcher_root=root)
        self.start([held])
        # Scenario 8 takes fresh conversations of the first account for each of its runs.
        latency_need = 2 * LATENCY_ROUNDS * LATENCY_CONCURRENCY * s.runs if s.wants("latency") else 0
        accounts = self.seed_held(held, max(most_streams, 100, latency_need * 2))
        tokens = [a.token for a in accounts]
        conversations = [c for pair in zip(*(a.conversations for a in accounts)) for c in pair]
        overlay_note = (f"nginx worker_connections raised to {self.nginx['worker_connections']} for this scenario "
                        f"(shipped {shipped_connections})") if self.nginx.get("overlay") else None
        if s.wants("latency"):
            self.token_latency(held, accounts[0])
        if s.wants("streams"):
            for n in s.streams:
                scenario = self.scenario(f"streams_{n}", "6", f"SSE streams held, N={n:,}", held, unit="done")
                config = {"port": held.https_port, "cafile": held.cafile, "tokens": tokens,
                          "conversations": conversations[:n], "n": n, "deadline": 60 + n * 0.02,
                          "ramp_seconds": s.stream_ramp / 1000}
                for run in range(s.runs):
                    say(f"run {run + 1}/{s.runs}: {scenario.title}")
                    scenario.measure(lambda: driver("streams", config, timeout=config["deadline"] + 120))
                runs = scenario.runs
                delay = s.stream_delay
                scenario.summary.update(
                    rate=median([r["completed"] for r in runs]), n=n, errors=sum(r["errors"] for r in runs),
                    ttft_p50_ms=median([r["ttft_p50_ms"] for r in runs]), ttft_p99_ms=median([r["ttft_p99_ms"] for r in runs]),
                    head_p99_ms=median([r["head_p99_ms"] for r in runs]),
                    p50_ms=_minus(median([r["ttft_p50_ms"] for r in runs]), delay),
                    p99_ms=_minus(median([r["ttft_p99_ms"] for r in runs]), delay),
                    peak_concurrent=median([r["peak_concurrent"] for r in runs]),
                    stream_p50_ms=median([r["stream_p50_ms"] for r in runs]),
                    client_cpu_share=median([r["client_cpu_share"] for r in runs]))
                scenario.notes.append(f"requests spread over {s.stream_ramp} ms")
                if overlay_note and n * 2 * 0.7 + 512 > shipped_connections:
                    scenario.notes.append(overlay_note)
        if s.wants("sockets-held"):
            for n in s.sockets:
                scenario = self.scenario(f"sockets_{n}", "7", f"idle WebSockets held, N={n:,}", held, unit="held")
                config = {"port": held.https_port, "cafile": held.cafile, "tokens": tokens, "n": n,
                          "hold_seconds": s.hold_seconds}
                for run in range(s.runs):
                    say(f"run {run + 1}/{s.runs}: {scenario.title}")
                    scenario.measure(lambda: driver("sockets-held", config, timeout=300 + n * 0.05))
                runs = scenario.runs
                scenario.summary.update(rate=median([r["held"] for r in runs]), n=n,
                                        errors=sum(r["errors"] for r in runs),
                                        opens_per_second=median([r["opens_per_second"] for r in runs]))
                scenario.notes.append(f"opened at {scenario.summary['opens_per_second']:,.0f}/s, held {s.hold_seconds} s")
                if overlay_note and n * 2 * 0.7 + 512 > shipped_connections:
                    scenario.notes.append(overlay_note)
        self.stop(held)

    def token_latency(self, held: BenchStack, account) -> None:
        """Scenario 8: each token's arrival at the client minus the moment it left the pool,
        read by a pass-through (drivers.py fastcgi-tap) put on the pool's socket path for
        the scenario, through which nginx and the relay reach the pool."""
        s = self.s
        scenario = self.scenario("token_latency", "8", "token latency added after the pool", held, unit="ms")
        pool_socket = Path(held.fcgi_socket)
        moved = pool_socket.with_name("privia-fcgi.measured.sock")
        pool_socket.rename(moved)  # the listening socket keeps working under its new name
        tap = subprocess.Popen([sys.executable, str(DRIVERS), "fastcgi-tap"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        tap.stdin.write(json.dumps({"listen": str(pool_socket), "upstream": str(moved)}))
        tap.stdin.close()
        tap.stdin = None  # so communicate() below does not write to it
        client_runs = []
        try:
            deadline = time.monotonic() + 20
            while not pool_socket.exists():
                if tap.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the FastCGI tap did not start: {tap.stderr.read()[-2000:]}")
                time.sleep(0.05)
            config = {"port": held.https_port, "cafile": held.cafile, "tokens": [account.token],
                      "conversations": account.conversations, "delay_ms": s.stream_delay,
                      "rounds": 1 if s.smoke else LATENCY_ROUNDS, "concurrency": 3 if s.smoke else LATENCY_CONCURRENCY,
                      "deadline": 60}
            for run in range(s.runs):
                say(f"run {run + 1}/{s.runs}: {scenario.title}")
                client_runs.append(scenario.measure(lambda: driver("token-latency", config, timeout=300)))
                config["conversations"] = config["conversations"][config["rounds"] * config["concurrency"] * 2:] \
                    or account.conversations
        finally:
            tap.send_signal(signal.SIGTERM)
            out, err = tap.communicate(timeout=60)
            pool_socket.unlink(missing_ok=True)
            moved.rename(pool_socket)
        if tap.returncode != 0:
            raise RuntimeError(f"the FastCGI tap failed: {err[-2000:]}")
        left_pool = json.loads(out.strip().splitlines()[-1])["streams"]
        for result in client_runs:
            for path, streams in result.pop("streams").items():
                added, unmatched = [], 0
                for stream in streams:
                    times = left_pool.get(stream["conversation_id"])
                    if not times or len(times) != len(stream["token_times"]):
                        unmatched += 1
                        continue
                    added += [(arrived - left) * 1000 for arrived, left in zip(stream["token_times"], times)]
                result[path] = {"samples": len(added), "unmatched_streams": unmatched,
                                "added_p50_ms": _percentile(added, 50), "added_p99_ms": _percentile(added, 99),
                                "added_max_ms": max(added, default=None)}
                result["errors"] += unmatched
        runs = scenario.runs
        scenario.summary = {"errors": sum(r["errors"] for r in runs)}
        for path in ("sse", "websocket"):
            scenario.summary[path] = {"added_p50_ms": median([r[path]["added_p50_ms"] for r in runs]),
                                      "added_p99_ms": median([r[path]["added_p99_ms"] for r in runs]),
                                      "samples": sum(r[path]["samples"] for r in runs)}


def _percentile(values: list[float], p: float):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def _minus(value, delta):
    return None if value is None else value - delta


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="about a second per scenario; exit 1 on any error")
    args = parser.parse_args()
    settings = Settings(args.smoke)

    missing = [name for name in ("privia-fcgi", "privia-relay", "privia-ceiling") if not (RELEASE / name).is_file()]
    if missing:
        say(f"{', '.join(missing)} not built; run `swift build -c release` (make bench does)")
        return 2
    if subprocess.run(["sh", "-c", "command -v wrk"], capture_output=True).returncode != 0:
        say("wrk is not installed; run scripts/install-deps.sh --bench (make bench does)")
        return 2
    # Thousands of sockets per process: the drivers, nginx's master, the relay and the pool
    # inherit this (root may raise the hard limit; others get what they have).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, 65536), max(hard, 65536)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    bench = Bench(settings)
    started = time.time()
    failed = None
    try:
        bench.run()
    except BaseException as error:  # still stop the stacks and write what was measured
        failed = error
        for stack in bench.stacks:
            say(f"{stack.name} log tail:\n{stack.log_tail(20)}")
    finally:
        bench.stop_all()
        for path in bench.temp_dirs:
            subprocess.run(["rm", "-rf", str(path)])
    results = report.results(settings.as_json(), bench.scenarios, bench.nginx, time.time() - started, bench.memory)
    print(report.table(results))
    paths = report.write(results, settings.results_dir)
    say("results: " + ", ".join(str(p) for p in paths))
    if failed:
        if isinstance(failed, KeyboardInterrupt):
            return 130
        say(f"failed: {failed!r}")
        return 1
    errors = sum(sc.summary.get("errors") or 0 for sc in bench.scenarios)
    if settings.smoke and errors:
        say(f"{errors} errors")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
