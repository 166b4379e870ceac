"""bench/serve_load.py at its smallest (one client, half a second per run) on the tiny model:
it starts the server with and without micro-batching, runs every load and adversarial phase on
loopback, stops by itself and exits 0 (every normal answer 200, no adversarial 5xx but the
burst's 503s past --max-concurrency, each with Retry-After). No figure
is checked: the timings belong to bench/README.md, not to a test."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import ROOT


def test_the_load_bench_runs_tiny(trained_model, tmp_path):
    out = tmp_path / "load.json"
    command = [sys.executable, str(ROOT / "bench" / "serve_load.py"), "--model", str(trained_model)]
    command += ["--clients", "1", "--seconds", "0.5", "--threads", "1", "--batch-texts", "4"]
    command += ["--json", str(out), "--server-arg=--max-concurrency=2"]  # a burst of 8
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    runs = {r["run"]: r for r in json.loads(out.read_text())["runs"]}
    for name in (
        "1 text/request, batching",
        "4 texts/request, batching",
        "1 text/request, no-batching",
        "4 texts/request, no-batching",
    ):
        assert set(runs[name]["statuses"]) == {"200"}, runs[name]
        assert runs[name]["rss_before"] > 0 and runs[name]["rss_after"] > 0
    adversarial = {k: v for k, v in runs.items() if k.startswith("adversarial: ")}
    assert len(adversarial) == 5
    statuses = {k: set(map(int, v["statuses"])) for k, v in adversarial.items()}
    assert statuses.pop(next(k for k in statuses if "flood" in k)) == {200}
    assert statuses.pop(next(k for k in statuses if "nested" in k)) == {400}
    assert statuses.pop("adversarial: burst: 8 clients, 4x --max-concurrency, 4 texts each") <= {
        200,
        503,
    }
    assert all(s <= {413} for s in statuses.values()), statuses
    assert "texts/s" in done.stdout and "unexpected 5xx: 0" in done.stdout
