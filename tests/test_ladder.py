"""The ladder's pieces that need no DVC run: queue states, the worker environment."""

import os
import sys
from pathlib import Path

from agnews.ladder.local import queue_states, worker_env


def test_queue_status_is_read_by_name():
    """What DVC's queue API returns (`celery_queue.status()`), a task without a name skipped."""
    entries = [
        {"rev": "aaee2a2f", "name": "badone", "timestamp": None, "status": "Failed"},
        {"rev": "f55d3bc0", "name": "goodone", "timestamp": None, "status": "Success"},
        {"rev": "0c1d2e30", "name": "later", "timestamp": None, "status": "Queued"},
        {"rev": "0c1d2e31", "name": None, "timestamp": None, "status": "Running"},
    ]
    assert queue_states(entries) == {"badone": "Failed", "goodone": "Success", "later": "Queued"}


def test_queue_snapshot_reads_an_empty_queue(tmp_path):
    """The queue's API on a real (empty) repository: no tasks, no workers."""
    import subprocess

    from agnews.ladder.local import queue_snapshot

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    assert queue_snapshot(str(tmp_path)) == ({}, 0)


def test_workers_find_this_environments_dvc_and_share_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin")
    env = worker_env(2, cpus=8)
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert env["OMP_NUM_THREADS"] == "4"
    assert "OMP_NUM_THREADS" not in worker_env(1, cpus=8)


def test_starting_the_queue_does_not_wait_for_the_workers_it_leaves_running():
    """`dvc queue start` leaves worker processes behind that inherit its output; the ladder must
    go on at once (it used to block until the whole queue was done, printing no progress)."""
    import subprocess
    import time

    from agnews.ladder.local import start_queue

    worker = (
        "import subprocess, sys; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])"
    )
    started = time.monotonic()
    start_queue(1, argv=[sys.executable, "-c", worker])
    assert time.monotonic() - started < 10
    subprocess.run(["pkill", "-f", "time.sleep\\(30\\)"], check=False)


def test_seed_repeats_are_named_after_the_preset(params):
    from helpers import ROOT

    from agnews.ladder.plan import wanted_params
    from agnews.presets import load_presets

    presets = load_presets(ROOT / "presets.yaml")
    wanted = wanted_params(["rnn_max"], presets, params, {"train.epochs": 1}, seeds=[53, 1, 2])
    assert list(wanted) == ["rnn_max", "rnn_max-s1", "rnn_max-s2"]
    assert [w["train.seed"] for w in wanted.values()] == [53, 1, 2]
    assert all(w["train.epochs"] == 1 and w["model.cell"] == "rnn" for w in wanted.values())
    import pytest

    from agnews.errors import ConfigError

    with pytest.raises(ConfigError, match=r"train\.seed"):
        wanted_params(["rnn_max"], presets, params, {}, seeds=[-1])
