"""bench/simulator.py runs end to end on whatever DATABASE_URL names, in a database of its own."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_benchmark_reports_the_mix_its_sql_the_ceiling_and_worlds_in_flight():
    # --analyzed: the figures after an ANALYZE (SQLite has one too), as a fresh server has them.
    command = [sys.executable, "bench/simulator.py", "--calls", "14", "--repeat", "1", "--forks", "2"]
    command += ["--http-calls", "0", "--without-trace", "--in-flight", "2", "--analyzed", "--json"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
    out = json.loads(done.stdout)
    mix = out["mix"]
    assert out["analyzed"] is True
    assert set(out["queries_per_call"]) == {"first_call_of_a_world", *mix}
    for run in (out["in_process"], out["in_process_without_trace"]):
        assert run["calls_per_s"] > 0 and set(run["ms_per_kind"]) == set(mix)
        assert run["client_cpu_ms_per_call"] > 0
    for run in (out["in_process"], out["in_process_without_trace"], out["in_flight"]):
        assert all(status < 400 for statuses in run["statuses"].values() for status in statuses)
    assert out["fork"]["median_ms"] > 0 and out["fork"]["queries"] > 0
