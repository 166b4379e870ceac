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


def _exp(params, changes, code="c0de", rows="r0ws"):
    """An experiments()-shaped run of `params` with `changes`, its metrics where its params
    put them."""
    from helpers import override

    run_params = override(params, changes)
    paths = run_params["paths"]
    return {
        "rev": "e" * 40,
        "params": run_params,
        "metrics": {
            f"{paths['train_live_dir']}/metrics.json": {"best_val_acc": 0.9, "code_hash": code},
            paths["test_metrics"]: {"accuracy": 0.89, "macro_f1": 0.88},
            paths["prepare_metrics"]: {
                "rows": {"train": 9, "val": 1, "test": 100},
                "vocab_size": 5,
                "raw_digest": rows,
            },
        },
    }


def test_an_experiment_of_other_params_is_never_replaced_unasked(params):
    """A teammate's `tuned` made with another --set: the ladder stops naming it (nothing run,
    nothing deleted); with --replace it is replaced; the same params are re-used; the same
    params with outputs missing from the DVC remote are run again."""
    import pytest

    from agnews.errors import AgnewsError
    from agnews.experiments.ladder.experiments import plan_runs

    want = {"train.lr": 0.003, "train.epochs": 1}
    theirs = _exp(params, {"train.lr": 0.01, "train.epochs": 1})
    ours = _exp(params, want)
    with pytest.raises(AgnewsError, match=r"--replace") as exc:
        plan_runs({"tuned": want, "new": want}, {"tuned": theirs}, where="on origin")
    assert "tuned: train.lr=0.01 (wanted 0.003)" in str(exc.value)
    assert "on origin" in str(exc.value) and "nothing deleted" in str(exc.value)
    plan = plan_runs({"tuned": want, "new": want}, {"tuned": theirs}, replace=True)
    assert plan.run == {"tuned": want, "new": want} and plan.replace == ["tuned"]
    plan = plan_runs({"tuned": want, "new": want}, {"tuned": ours})
    assert plan.reuse == ["tuned"] and list(plan.run) == ["new"] and not plan.replace
    plan = plan_runs({"tuned": want}, {"tuned": ours}, complete=lambda run: False)
    assert list(plan.run) == ["tuned"] and plan.incomplete == ["tuned"]


def test_the_local_queue_deletes_nothing_unless_asked(params, monkeypatch):
    import pytest

    import agnews.experiments.ladder.local as local
    from agnews.errors import AgnewsError

    monkeypatch.setattr(local, "experiments", lambda: {"tuned": _exp(params, {"train.lr": 0.01})})
    calls = []
    monkeypatch.setattr(local, "dvc", lambda *args: calls.append(args))
    monkeypatch.setattr(local, "run", lambda *a, **k: None)
    with pytest.raises(AgnewsError, match=r"tuned: train\.lr=0\.01"):
        local.queue_ladder({"tuned": {"train.lr": 0.003}})
    assert calls == []
    assert local.queue_ladder({"tuned": {"train.lr": 0.003}}, replace=True) == ["tuned"]
    assert calls[0] == ("exp", "remove", "tuned") and calls[1][:3] == ("exp", "run", "--queue")


def test_the_cluster_deletes_nothing_on_the_remote_unless_asked(params, monkeypatch):
    """Same-named experiments on the git remote: one of other params stops the ladder before
    Ray starts (it used to be `dvc exp remove -g origin`d); with --replace the task force-pushes
    over exactly that commit; one of the same params whose outputs are missing from the DVC
    remote is run again the same way."""
    import pytest

    import agnews.experiments.ladder.cluster as cluster
    from agnews.errors import AgnewsError

    theirs = {**_exp(params, {"train.lr": 0.01}), "rev": "a" * 40}
    ours = {**_exp(params, {"train.lr": 0.003}), "rev": "b" * 40}
    on_remote = {"tuned": "a" * 40, "rnn_max": "b" * 40}
    monkeypatch.setattr(cluster, "remote_experiments", lambda remote, commit: on_remote)
    monkeypatch.setattr(cluster, "experiments", lambda: {"tuned": theirs, "rnn_max": ours})
    calls = []
    monkeypatch.setattr(cluster, "dvc", lambda *args: calls.append(args))
    monkeypatch.setattr(cluster, "outputs_missing_on_remote", lambda rev: ["models/model.pt"])
    wanted = {"tuned": {"train.lr": 0.003}, "rnn_max": {"train.lr": 0.003}}
    with pytest.raises(AgnewsError, match="here or on origin"):
        cluster.plan_on_remote(wanted, "origin", "c" * 40, True, replace=False)
    assert not [c for c in calls if "remove" in c]
    todo, replaces = cluster.plan_on_remote(wanted, "origin", "c" * 40, True, replace=True)
    assert list(todo) == ["tuned", "rnn_max"]
    assert replaces == {"tuned": "a" * 40, "rnn_max": "b" * 40}
    assert ("exp", "remove", "tuned") in calls  # the local copy; the remote one is pushed over
    # the same params and every output on the DVC remote: re-used, nothing run
    monkeypatch.setattr(cluster, "outputs_missing_on_remote", lambda rev: [])
    todo, _ = cluster.plan_on_remote(
        {"rnn_max": {"train.lr": 0.003}}, "origin", "c" * 40, True, False
    )
    assert todo == {}


def test_a_grid_only_ladder_reports_its_runs_as_current(params):
    """`--presets rnn_max --set model.hidden_size=16,32` makes no run named after a preset: its
    runs are the table's version (it said "no finished runs" and listed them as older runs)."""
    from helpers import ROOT

    from agnews.experiments.ladder.runs import choose, from_experiment
    from agnews.experiments.presets import load_presets

    presets = load_presets(ROOT / "presets.yaml")
    runs = [
        from_experiment("rnn_max-hidden_size16", _exp(params, {"model.hidden_size": 16})),
        from_experiment("rnn_max-hidden_size32", _exp(params, {"model.hidden_size": 32})),
        from_experiment("old-run", _exp(params, {"model.hidden_size": 8}, code="0ld")),
    ]
    current, table, extra, older = choose(presets, runs, params)
    assert current == ("c0de", params["data"]["local_dir"], "r0ws")
    assert set(table) == {"rnn_max-hidden_size16", "rnn_max-hidden_size32"} and not extra
    assert [r["name"] for r in older] == ["old-run"]


def test_compare_keeps_long_experiment_names_whole():
    from agnews.experiments.compare import Row, render, table_cells

    base = {"model.cell": "rnn", "train.epochs": 1}
    rows = [Row(f"rnn_max-hidden_size{h}-lr0.001", "done", base, {}, {}) for h in (16, 32)]
    table = render(table_cells(rows, base), 120, markdown=False)
    assert "rnn_max-hidden_size16-lr0.001 " in table and "rnn_max-hidden_size32-lr0.001 " in table
