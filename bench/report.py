"""The benchmark's output: machine facts, the scenarios' table, the memory table, the targets,
JSON, CSV and Markdown files."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _command(*args: str) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=20, cwd=REPO)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


def machine() -> dict:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "?"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    debian = Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").exists() else "?"
    commit = _command("git", "rev-parse", "--short", "HEAD")
    dirty = _command("git", "status", "--porcelain", "--untracked-files=no")
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": os.cpu_count(), "cpu": model, "memory": memory, "kernel": platform.release(),
        "debian": debian, "loadavg_at_end": os.getloadavg(), "nginx": _command("nginx", "-v"),
        "wrk": _command("wrk", "-v"), "python": platform.python_version(),
        "commit": commit + ("+changes" if dirty not in ("", "?") else ""),
    }


# ---------------------------------------------------------------------------
# Targets (bench/README.md), judged from the medians
# ---------------------------------------------------------------------------


def targets(by_key: dict, connections: int) -> list[dict]:
    out = []

    def add(name: str, met: bool | None, measured: str) -> None:
        out.append({"target": name, "met": met, "measured": measured})

    if "list20" in by_key:
        sc = by_key["list20"]
        share, p99 = sc.get("of_ceiling"), sc.get("p99_ms")
        add("3: list of 20 at >= 50% of the ceiling", share is not None and share >= 0.5, f"{_pct(share)} of the ceiling")
        ceiling = by_key.get("ceiling") or {}
        paced = by_key.get("list20_paced_50") or {}
        below = (f"; at 50% of the ceiling's rate, Poisson arrivals: p99 {_ms(paced.get('p99_ms'))}, "
                 f"the ceiling's at that rate {_ms(paced.get('ceiling_p99_ms'))}") if paced else ""
        add(f"3: list of 20 p99 < 10 ms at {connections} connections", p99 is not None and p99 < 10,
            f"p99 {_ms(p99)} at saturation, {_logged_ms(sc.get('nginx_p99_ms'))} in nginx's log (the ceiling's own: "
            f"{_ms(ceiling.get('p99_ms'))}, {_logged_ms(ceiling.get('nginx_p99_ms'))} in nginx's log){below}")
    if "query" in by_key:
        sc = by_key["query"]
        add("5: zero errors", sc.get("errors") == 0, f"{sc.get('errors')} errors")
        add("5: >= 3,000 full turns/s", (sc.get("rate") or 0) >= 3000, f"{_num(sc.get('rate'))} turns/s")
    streams = [v for k, v in by_key.items() if k.startswith("streams_")]
    if streams:
        top = max(streams, key=lambda v: v["n"])
        add(f"6: {top['n']:,} streams held, all complete", top.get("rate") == top["n"] and top.get("errors") == 0,
            f"{_num(top.get('rate'))}/{top['n']:,} complete, {top.get('errors')} errors")
        add("6: time to first token p99 < 50 ms (beyond the stub's first-token delay)",
            top.get("p99_ms") is not None and top["p99_ms"] < 50,
            f"p99 {_ms(top.get('p99_ms'))} (raw, with the stub's delay: {_ms(top.get('ttft_p99_ms'))})")
    sockets = [v for k, v in by_key.items() if k.startswith("sockets_")]
    if sockets:
        top = max(sockets, key=lambda v: v["n"])
        relay = top.get("relay_mib")
        add(f"7: {top['n']:,} sockets held under 200 MB relay RSS",
            top.get("rate") == top["n"] and relay is not None and relay * 1.048576 < 200,
            f"{_num(top.get('rate'))}/{top['n']:,} held, relay {relay} MiB")
    if "token_latency" in by_key:
        sc = by_key["token_latency"]
        for path, label in (("sse", "SSE"), ("websocket", "WebSocket")):
            added = (sc.get(path) or {}).get("added_p99_ms")
            add(f"8: {label} < 2 ms p99 added", added is not None and added < 2, f"p99 added {_ms(added)}")
    for key, label in (("scale_list20", "list"), ("scale_get50", "get")):
        if key in by_key:
            sc = by_key[key]
            worst = max(x for x in (sc.get("vs_small_p50"), sc.get("vs_small_p99"), 0) if x is not None)
            add(f"9: {label} latency within 1.5x of the small database", worst <= 1.5,
                f"p50 x{_x(sc.get('vs_small_p50'))}, p99 x{_x(sc.get('vs_small_p99'))}")
    return out


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------


def _num(v) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _ms(v) -> str:
    return "-" if v is None else (f"{v:.2f} ms" if abs(v) < 10 else f"{v:.1f} ms")


def _logged_ms(v) -> str:
    """A time from nginx's log, which counts whole milliseconds."""
    return "-" if v is None else f"{v:g} ms"


def _pct(v) -> str:
    return "-" if v is None else f"{v * 100:.0f}%"


def _x(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def results(settings: dict, scenarios: list, nginx: dict, seconds: float, memory: dict | None = None) -> dict:
    rows = [sc.as_json() for sc in scenarios]
    by_key = {}
    for row in rows:
        summary = dict(row["summary"])
        summary["relay_mib"] = (row["memory_mib"].get("relay") or {}).get("peak_total_mib")
        by_key[row["key"]] = summary
    return {"machine": machine(), "settings": settings, "nginx_overlay": nginx, "seconds": round(seconds, 1),
            "scenarios": rows, "memory_mib": memory or {}, "targets": targets(by_key, settings["connections"])}


def table_rows(results: dict) -> list[list[str]]:
    rows = []
    for sc in results["scenarios"]:
        s, memory = sc["summary"], sc["memory_mib"]
        rss = " / ".join(_num((memory.get(role) or {}).get("peak_total_mib")) if memory.get(role) else "-"
                         for role in ("nginx", "pool", "relay"))
        notes = list(sc["notes"])
        if sc["key"] == "token_latency":
            for path, label in (("sse", "SSE"), ("websocket", "WebSocket")):
                p = s.get(path) or {}
                rows.append([sc["scenario"], f"token latency added after the pool, {label}", "-",
                             _ms(p.get("added_p50_ms")), _ms(p.get("added_p99_ms")), "-", str(s.get("errors", "-")), "-", rss,
                             _cpu(sc), _steal(sc), f"{p.get('samples', 0):,} tokens"])
            continue
        if sc["unit"] in ("req/s", "turns/s"):
            rate = f"{_num(s.get('rate'))} {sc['unit']}"
        elif sc["unit"] == "done":
            rate = f"{_num(s.get('rate'))}/{s.get('n', 0):,} done"
            notes.append(f"TTFT beyond the stub's delay; raw p99 {_ms(s.get('ttft_p99_ms'))}, "
                         f"response head p99 {_ms(s.get('head_p99_ms'))}, {_num(s.get('peak_concurrent'))} at once")
        elif sc["unit"] == "held":
            rate = f"{_num(s.get('rate'))}/{s.get('n', 0):,} held"
        else:
            rate = _num(s.get("rate"))
        if "offered_rps" in s:
            notes.append(f"Poisson arrivals at {_num(s['offered_rps'])} req/s; the ceiling at that rate "
                         f"(kept {_num(s.get('ceiling_rps'))} req/s): p50 {_ms(s.get('ceiling_p50_ms'))}, "
                         f"p99 {_ms(s.get('ceiling_p99_ms'))}, in nginx {_logged_ms(s.get('ceiling_nginx_p99_ms'))}")
        if "vs_small_p50" in s:
            notes.append(f"x{_x(s.get('vs_small_p50'))} p50, x{_x(s.get('vs_small_p99'))} p99 vs. small db")
        if "provider_cpu_share" in s:
            notes.append(f"provider at {s['provider_cpu_share'] * 100:.0f}% of a core; "
                         f"{_num(s.get('provider_new_connections'))} new provider connections "
                         f"for {_num(s.get('provider_completions'))} turns")
        if s.get("client_cpu_share") and s["client_cpu_share"] > 0.85:
            notes.append(f"client at {s['client_cpu_share'] * 100:.0f}% of a core")
        if s.get("response_bytes") and s["response_bytes"] > 10_000:
            notes.append(f"{s['response_bytes'] / 1e6:.2f} MB per response")
        rows.append([sc["scenario"], sc["title"], rate, _ms(s.get("p50_ms")), _ms(s.get("p99_ms")),
                     _logged_ms(s.get("nginx_p99_ms")), str(s.get("errors", "-")), _pct(s.get("of_ceiling")) if sc["key"] != "ceiling" else "100%",
                     rss, _cpu(sc), _steal(sc), "; ".join(notes)])
    return rows


HEADER = ["#", "scenario", "rate", "p50", "p99", "p99 in nginx", "errors", "of ceiling", "peak RSS MiB nginx/pool/relay",
          "CPU %/run nginx/pool/relay/client", "VM steal", "notes"]


# The memory table: each stack's processes by kind (in the order the runner lists them, the
# stack's total last), at rest after start, at the peak of its load phases (the highest sample
# of each figure) and at rest after them.
MEMORY_MOMENTS = (("idle", "idle"), ("peak", "peak under load"), ("after", "after load"))
MEMORY_HEADER = ["stack", "process kind", "processes"] + [f"{label} {figure}" for _, label in MEMORY_MOMENTS
                                                          for figure in ("RSS", "PSS")] + ["idle distinct", "after distinct"]


def memory_rows(results: dict) -> list[list[str]]:
    rows = []
    for stack, moments in (results.get("memory_mib") or {}).items():
        kinds = list(dict.fromkeys(kind for moment, _ in MEMORY_MOMENTS for kind in moments.get(moment) or {}))
        for kind in kinds:
            figures = [(moments.get(moment) or {}).get(kind) or {} for moment, _ in MEMORY_MOMENTS]
            processes = max(f.get("processes", 0) for f in figures)
            if not processes:
                continue
            row = [stack, kind, str(processes)]
            for f in figures:
                row += [_mib(f.get("rss_mib")), _mib(f.get("pss_mib"))]
            # The stack's own physical pages, each counted once (rest moments, totals only).
            row += [_mib(f.get("distinct_mib")) if kind == "total" else "" for f in (figures[0], figures[2])]
            rows.append(row)
    return rows


def _mib(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def _cpu(scenario: dict) -> str:
    """Median share of one core each role used during a run (200% = both cores of two)."""
    runs = [r for r in scenario["runs"] if r.get("wall_seconds")]
    if not runs:
        return "-"

    def share(get) -> str:
        values = sorted(get(r) / r["wall_seconds"] * 100 for r in runs)
        return f"{values[len(values) // 2]:.0f}"

    roles = [share(lambda r, role=role: (r.get("cpu_seconds") or {}).get(role, 0)) for role in ("nginx", "pool", "relay")]
    return " / ".join(roles + [share(lambda r: r.get("client_cpu_seconds", 0))])


def _steal(scenario: dict) -> str:
    """Median over a row's runs of the share of the machine's CPU time the hypervisor took:
    on a shared VM the figures of a row with much steal are the neighbours' as much as
    Privia's."""
    values = sorted(r["steal_share"] for r in scenario["runs"] if r.get("steal_share") is not None)
    return _pct(values[len(values) // 2]) if values else "-"


def _aligned(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def line(row):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def table(results: dict) -> str:
    rows = table_rows(results)
    m = results["machine"]
    out = [f"Privia benchmark, {m['date']}: {m['nproc']} x {m['cpu']}, {m['memory']}, Linux {m['kernel']}, "
           f"Debian {m['debian']}, commit {m['commit']}",
           f"medians of {results['settings']['runs']} runs of {results['settings']['duration']} s, "
           f"{results['settings']['connections']} wrk connections; total {results['seconds']:.0f} s",
           ""]
    out += _aligned(HEADER, rows, {2, 3, 4, 5, 6, 7})
    memory = memory_rows(results)
    if memory:
        out += ["", "Memory per kind of process, MiB (smaps_rollup; RSS counts a shared page in every process "
                    "that maps it, PSS shares it out among them; distinct: the stack's physical pages, "
                    "each counted once):"]
        out += _aligned(MEMORY_HEADER, memory, set(range(2, len(MEMORY_HEADER))))
    if results["targets"]:
        out += ["", "Targets:"]
        for t in results["targets"]:
            mark = "met   " if t["met"] else "MISSED"
            out.append(f"  {mark}  {t['target']}: {t['measured']}")
    return "\n".join(out)


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]


def markdown(results: dict) -> str:
    """latest.md: the table with the run's date and machine above it, the memory table, and the
    targets below, so the file says on its own when and where its figures were measured."""
    m, settings = results["machine"], results["settings"]
    out = ["# Privia benchmark: the latest run", "",
           f"{m['date']}, commit {m['commit']}{' (smoke run)' if settings.get('smoke') else ''}: "
           f"{m['nproc']} x {m['cpu']}, {m['memory']}, Linux {m['kernel']}, Debian {m['debian']}. "
           f"Medians of {settings['runs']} runs of {settings['duration']} s, {settings['connections']} wrk "
           f"connections; the load generators share the machine. Written by `make bench`; the method, "
           f"scenarios and targets are in [bench/README.md](../README.md).", ""]
    out += _markdown_table(HEADER, table_rows(results))
    memory = memory_rows(results)
    if memory:
        out += ["", "Memory per kind of process, MiB (RSS and PSS from smaps_rollup; distinct: the stack's "
                    "physical pages, each counted once, from pagemap):", ""]
        out += _markdown_table(MEMORY_HEADER, memory)
    if results["targets"]:
        out += ["", "Targets:", ""]
        out += [f"- {'met' if t['met'] else 'MISSED'}: {t['target']}: {t['measured']}" for t in results["targets"]]
    return "\n".join(out)


def write(results: dict, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = results["machine"]["date"].replace(":", "").replace("-", "")
    latest = directory / "latest.json"
    stamped = directory / f"bench-{stamp}.json"
    text = json.dumps(results, indent=2) + "\n"
    for path in (latest, stamped):
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    with open(directory / "latest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(table_rows(results))
    with open(directory / "latest-memory.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(MEMORY_HEADER)
        writer.writerows(memory_rows(results))
    (directory / "latest.md").write_text(markdown(results) + "\n")
    return [latest, stamped, directory / "latest.csv", directory / "latest-memory.csv", directory / "latest.md"]
