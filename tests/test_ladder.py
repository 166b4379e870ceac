"""The ladder's pieces that need no DVC run: queue parsing, the worker environment."""

import os
import sys
from pathlib import Path

from agnews.ladder import queue_states, worker_env


def test_queue_status_is_parsed_by_name():
    text = (
        "Task     Name      Created    Status\n"
        "aaee2a2  badone    07:55 AM   Failed\n"
        "f55d3bc  goodone   07:55 AM   Success\n"
        "0c1d2e3  later     07:56 AM   Queued\n"
        "\nWorker status: 0 active, 0 idle\n"
    )
    assert queue_states(text) == {"badone": "Failed", "goodone": "Success", "later": "Queued"}


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

    from agnews.ladder import start_queue

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

    from agnews.ladder import wanted_params
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
