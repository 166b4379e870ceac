"""The ladder's pieces that need no DVC run: queue states, the worker environment."""

import os
import sys
from pathlib import Path

from agnews.experiments.ladder.local import queue_states, worker_env


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

    from agnews.experiments.ladder.local import queue_snapshot

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

    from agnews.experiments.ladder.local import start_queue

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

    from agnews.experiments.ladder.plan import wanted_params
    from agnews.experiments.presets import load_presets

    presets = load_presets(ROOT / "presets.yaml")
    wanted = wanted_params(["rnn_max"], presets, params, {"train.epochs": 1}, seeds=[53, 1, 2])
    assert list(wanted) == ["rnn_max", "rnn_max-s1", "rnn_max-s2"]
    assert [w["train.seed"] for w in wanted.values()] == [53, 1, 2]
    assert all(w["train.epochs"] == 1 and w["model.cell"] == "rnn" for w in wanted.values())
    import pytest

    from agnews.errors import ConfigError

    with pytest.raises(ConfigError, match=r"train\.seed"):
        wanted_params(["rnn_max"], presets, params, {}, seeds=[-1])


def test_comma_separated_set_values_make_a_grid_named_after_the_key(params):
    from helpers import ROOT

    from agnews.experiments.ladder.plan import parse_grid, split_values, wanted_params
    from agnews.experiments.presets import load_presets

    assert split_values("128,256") == ["128", "256"]
    assert split_values("[1,2],'a,b'") == ["[1,2]", "'a,b'"]  # lists and quoted text stay whole
    grid = parse_grid(["model.hidden_size=8,12", "train.epochs=1", "train.lr=0.1,0.01"])
    assert grid == [
        ("-hidden_size8-lr0.1", {"model.hidden_size": 8, "train.epochs": 1, "train.lr": 0.1}),
        ("-hidden_size8-lr0.01", {"model.hidden_size": 8, "train.epochs": 1, "train.lr": 0.01}),
        ("-hidden_size12-lr0.1", {"model.hidden_size": 12, "train.epochs": 1, "train.lr": 0.1}),
        ("-hidden_size12-lr0.01", {"model.hidden_size": 12, "train.epochs": 1, "train.lr": 0.01}),
    ]
    assert parse_grid(["train.epochs=1"]) == [("", {"train.epochs": 1})]  # no grid: same names
    presets = load_presets(ROOT / "presets.yaml")
    wanted = wanted_params(
        ["rnn_max"], presets, params, {}, seeds=[53, 1], grid=parse_grid(["model.hidden_size=8,12"])
    )
    assert list(wanted) == [
        "rnn_max-hidden_size8", "rnn_max-hidden_size8-s1",
        "rnn_max-hidden_size12", "rnn_max-hidden_size12-s1",
    ]  # fmt: skip
    assert [w["model.hidden_size"] for w in wanted.values()] == [8, 8, 12, 12]
    import pytest

    from agnews.errors import ConfigError

    with pytest.raises(ConfigError, match=r"expected section\.key=value"):
        parse_grid(["hidden_size=8,12"])


def test_a_retried_ray_task_skips_a_run_already_on_the_git_remote(tmp_path, monkeypatch):
    """A task whose node died after `dvc exp push` is run again by Ray: it must find the
    experiment's ref on the remote and stop there, not make a second run (no clone, no dvc)."""
    import subprocess
    import types

    import agnews.experiments.ladder.cluster as cluster

    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    ident = ["-c", "user.name=t", "-c", "user.email=t@e"]
    subprocess.run(
        ["git", *ident, "commit", "-q", "--allow-empty", "-m", "x"], cwd=work, check=True
    )
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True, check=True
    ).stdout.strip()
    ref = cluster.exp_ref(commit, "done-run")
    assert ref == f"refs/exps/{commit[:2]}/{commit[2:]}/done-run"
    subprocess.run(["git", "push", "-q", str(origin), f"HEAD:{ref}"], cwd=work, check=True)
    context = types.SimpleNamespace(get_node_id=lambda: "abcdef0123")
    monkeypatch.setitem(
        sys.modules, "ray", types.SimpleNamespace(get_runtime_context=lambda: context)
    )
    monkeypatch.setenv("AGNEWS_RAY_WORKDIR", str(tmp_path / "node"))
    spec = {"commit": commit, "url": str(origin), "overrides": {}, "threads": 1}
    result = cluster.run_on_node({**spec, "name": "done-run", "push_cache": False})
    assert result["status"] == "exists"
    assert "already on the git remote" in Path(result["log"]).read_text()
    assert [p.suffix for p in (tmp_path / "node").iterdir()] == [".log"]  # nothing cloned


def test_the_cluster_never_gets_a_password_from_the_git_remote_url(tmp_path, monkeypatch):
    import subprocess

    import pytest

    from agnews.errors import AgnewsError
    from agnews.experiments.ladder.cluster import remote_url

    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    (tmp_path / "origin.git").mkdir()
    subprocess.run(["git", "remote", "add", "local", "origin.git"], check=True)
    assert remote_url("local") == str(tmp_path / "origin.git")  # absolute for every node
    subprocess.run(["git", "remote", "add", "user", "https://me@example.com/r.git"], check=True)
    assert remote_url("user") == "https://me@example.com/r.git"
    subprocess.run(
        ["git", "remote", "add", "pw", "https://me:s3cret@example.com/r.git"], check=True
    )
    with pytest.raises(AgnewsError, match="password"):
        remote_url("pw")


def test_a_run_takes_a_gpu_when_the_cluster_has_them_else_its_cpus():
    from agnews.experiments.ladder.cluster import task_resources

    assert task_resources({"CPU": 16.0, "GPU": 4.0}, 2) == {"num_gpus": 1, "num_cpus": 2}
    assert task_resources({"CPU": 16.0}, 4) == {"num_cpus": 4}
    assert task_resources({"CPU": 16.0, "GPU": 0.0}, 1) == {"num_cpus": 1}


def test_a_run_is_reused_only_if_every_param_matches(params):
    """A preset's run sets every param from the committed params.yaml, so an earlier run of the
    same preset made with another value anywhere (a --set of word dropout, other data) is not
    taken for it."""
    from helpers import ROOT, override

    from agnews.experiments.ladder.experiments import matches
    from agnews.experiments.ladder.plan import wanted_params
    from agnews.experiments.presets import load_presets

    presets = load_presets(ROOT / "presets.yaml")
    [(_, want)] = wanted_params(["gru_max"], presets, params, {}).items()
    assert set(want) == {f"{s}.{k}" for s, values in params.items() for k in values}
    run = {"params": override(params, {"model.cell": "gru", "train.epochs": 10})}
    assert matches(run, want)
    for other in ({"train.word_dropout": 0.1}, {"data.local_dir": "elsewhere"}):
        assert not matches({"params": override(run["params"], other)}, want), other
