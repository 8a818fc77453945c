"""`make bench` in miniature: every benchmark scenario for about a second, against real
stacks, with small data. It asserts that nothing failed (zero errors everywhere) and that the
memory figures are there and plausible: the speed figures of a one-second run on a busy
machine mean nothing, and the benchmark's targets are held in its own output, not in tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCENARIOS = {
    "ceiling", "health", "list20", "list10k", "get50", "get5000", "scale_list20", "scale_get50",
    "list20_paced_25", "query", "provider_query", "socket_turns", "token_latency", "streams_20", "sockets_50",
}
MEMORY_KINDS = ("nginx master", "nginx workers", "pool master", "pool workers", "relay")


def test_every_bench_scenario_runs_without_errors(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BENCH_", "PRIVIA_")) or k == "PRIVIA_BIN_DIR"}
    env["BENCH_RESULTS_DIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--smoke"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, f"{out.stdout[-4000:]}\n{out.stderr[-6000:]}"

    results = json.loads((tmp_path / "latest.json").read_text())
    by_key = {scenario["key"]: scenario for scenario in results["scenarios"]}
    assert SCENARIOS <= by_key.keys(), sorted(SCENARIOS - by_key.keys())
    for key, scenario in by_key.items():
        assert scenario["runs"], key
        assert scenario["summary"]["errors"] == 0, (key, scenario["runs"])
    # The paced list kept to its rate rather than saturating (noise can only slow it down).
    for run in by_key["list20_paced_25"]["runs"]:
        assert run["rps"] <= run["offered_rps"] * 1.25, run
    # nginx's own timing is of the run's requests: all of them, and no more than the requests
    # still in flight when wrk stopped besides; and no longer than what the client measured
    # around them (nginx counts whole milliseconds, from the time it cached for its loop).
    connections = results["settings"]["connections"]
    for run in by_key["list20"]["runs"]:
        assert run["requests"] <= run["nginx_requests"] <= run["requests"] + 2 * connections, run
        assert run["nginx_p50_ms"] <= run["p50_ms"] + 2, run
    # Memory: every kind of process of every stack, at rest after start and at the peak of the
    # load phases, with a resident size and a proportional share no larger than it.
    assert results["memory_mib"].keys() >= {"ceiling", "small", "scale", "long", "held"}, results["memory_mib"]
    for stack, moments in results["memory_mib"].items():
        for moment in ("idle", "peak", "after"):
            figures = moments[moment]
            for kind in MEMORY_KINDS:
                memory = figures[kind]
                assert memory["processes"] >= 1, (stack, moment, kind, figures)
                assert 0 < memory["pss_mib"] <= memory["rss_mib"] < 4096, (stack, moment, kind, figures)
            kinds_rss = sum(figures[kind]["rss_mib"] for kind in MEMORY_KINDS)
            if moment != "peak":  # a peak's total is its highest sum, not the sum of highest parts
                assert abs(figures["total"]["rss_mib"] - kinds_rss) <= 0.5, (stack, moment, figures)
            assert figures["total"]["processes"] == sum(figures[kind]["processes"] for kind in MEMORY_KINDS)
            if moment != "peak" and os.geteuid() == 0:  # page frame numbers are root's to read
                # Each physical page once: no more than the RSS that counts shared ones repeatedly.
                assert 0 < figures["total"]["distinct_mib"] <= figures["total"]["rss_mib"], (stack, moment, figures)
        # Under load the pool's workers hold at least what they held at rest, give or take a page.
        assert moments["peak"]["pool workers"]["rss_mib"] >= moments["idle"]["pool workers"]["rss_mib"] - 1, moments
    assert by_key["list20"]["memory_kinds_mib"]["total"]["rss_mib"] > 0, by_key["list20"]
    # Turns through the provider reused its connections: no more new ones than turns at once.
    for run in by_key["provider_query"]["runs"]:
        assert run["provider_completions"] > 0 and run["provider_new_connections"] <= connections, run
    # The tables were printed with every scenario and every stack's memory in them.
    assert "ceiling: constant JSON" in out.stdout and "idle WebSockets held" in out.stdout
    assert "Memory per kind of process" in out.stdout and "pool workers" in out.stdout
    assert (tmp_path / "latest-memory.csv").read_text().count("\n") == 1 + 6 * len(results["memory_mib"])
