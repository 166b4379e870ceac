"""The real DVC pipeline, run the way a user runs it, in a temporary git copy of the project on
the real-data sample: dvc repro, a no-op repro, a train-only change, dvc exp run -S, a preset,
dvc exp show and dvc plots diff; a bad param; a killed training run. DVC's queue (two
experiments at once, the ladder) is tests/test_queue_e2e.py: a file of its own, so that the
test suite's two xdist processes share these long tests."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from dvc_project import dvc as _dvc
from dvc_project import run as _run
from dvc_project import sample_project
from helpers import stages_run

from agnews import CLASS_NAMES
from agnews.experiments.compare import flatten

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return sample_project(tmp_path_factory.mktemp("project"))


def flatten_all(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= flatten_all(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def _stages_run(proc: subprocess.CompletedProcess) -> list[str]:
    return stages_run(proc.stdout + proc.stderr)


def test_repro_then_experiments(project):
    # 1. the whole pipeline
    first = _dvc(project, "repro")
    assert _stages_run(first) == ["check", "download", "prepare", "train", "evaluate"]
    metrics = json.loads((project / "metrics" / "test.json").read_text())
    assert metrics["n_test"] == 200 and 0.0 <= metrics["accuracy"] <= 1.0
    prep = json.loads((project / "metrics" / "prepare.json").read_text())
    assert prep["rows"] == {"train": 360, "val": 40, "test": 200}

    # 2. nothing changed: nothing runs
    again = _dvc(project, "repro")
    assert _stages_run(again) == []
    assert "Data and pipelines are up to date" in again.stdout
    _run(["git", "add", "-A"], project)
    _run(["git", "commit", "-qm", "baseline results"], project)

    # 3. a train parameter reruns train and evaluate only
    lr = _dvc(project, "exp", "run", "-n", "lr-run", "-S", "train.lr=0.002")
    assert _stages_run(lr) == ["check", "train", "evaluate"]

    # 4. the example: a GRU
    gru = _dvc(project, "exp", "run", "-n", "gru-run", "-S", "model.cell=gru")
    assert _stages_run(gru) == ["check", "train", "evaluate"]

    # 5. a preset, run the README's way: every param from HEAD's params.yaml (the workspace
    # still holds gru-run's cell and lr-run's lr), the preset's, then -S (null, false and
    # "+"-joined pooling all round-trip); a misspelt name runs and queues nothing
    cmd = [sys.executable, "-m", "agnews", "presets", "run"]
    typo = _run([*cmd, "bilstm2_flatten_mean_maxx"], project, check=False)
    assert typo.returncode == 2 and "unknown preset 'bilstm2_flatten_mean_maxx'" in typo.stderr
    assert _stages_run(typo) == []
    preset = _run(
        [*cmd, "bilstm2_flatten_mean_max", "-n", "best-run", "-S", "train.epochs=2"], project
    )
    assert _stages_run(preset) == ["check", "train", "evaluate"]

    # 6. dvc exp show: params and metrics as columns for every run
    shown = json.loads(_dvc(project, "exp", "show", "--json").stdout)
    runs = {}
    for entry in shown:
        for exp in [entry, *[e for x in entry.get("experiments") or [] for e in x["revs"]]]:
            data = exp.get("data") or {}
            name = exp.get("name") or data.get("rev")
            params = data["params"]["params.yaml"]["data"]
            metrics = data["metrics"]
            runs[name] = (params, metrics)
    assert {"lr-run", "gru-run", "best-run"} <= set(runs)
    params, metrics = runs["gru-run"]
    assert params["model"]["cell"] == "gru"
    assert 0.0 <= metrics["metrics/test.json"]["data"]["accuracy"] <= 1.0
    assert 0.0 <= metrics["dvclive/train/metrics.json"]["data"]["best_val_acc"] <= 1.0
    params, _ = runs["best-run"]
    assert params["model"]["pooling"] == "flatten+mean+max"
    assert params["model"]["fixed_len"] == 70 and params["model"]["head_concat_pooled"] is False
    assert params["train"]["epochs"] == 2
    assert runs["lr-run"][0]["train"]["lr"] == 0.002
    assert params["train"]["lr"] == runs["main"][0]["train"]["lr"] != 0.002  # HEAD's, not lr-run's
    assert not any("maxx" in name for name in runs)
    queued = _dvc(project, "queue", "status").stdout
    assert "maxx" not in queued
    # no metric shares a column name with a param (DVC would rename the param's column), and
    # no param is repeated as a metric
    for params, metrics in runs.values():
        param_keys = set(flatten(params))
        for name, metric in metrics.items():
            metric_keys = set(flatten_all(metric["data"]))
            assert not param_keys & metric_keys, name
            assert not {k.rsplit(".", 1)[-1] for k in metric_keys} & {"cell", "pooling", "epochs"}

    # 6b. the documented comparison: one row per run, what decides between them, 120 columns
    table = _run([sys.executable, "-m", "agnews", "compare"], project).stdout.splitlines()
    assert max(len(line) for line in table) <= 120, table
    assert table[0].split() == [
        *("experiment", "model", "ep", "lr", "batch", "val", "%", "test", "%", "F1", "%"),
        *("train", "s", "other", "changes"),
    ]
    rows = {line.split()[0]: line for line in table[2:]}
    assert {"lr-run", "gru-run", "best-run", "main"} <= set(rows)
    assert " gru max " in rows["gru-run"] and " 0.002 " in rows["lr-run"]
    assert "lstm 2x bi flatten70+mean+max" in rows["best-run"]
    best_test = runs["best-run"][1]["metrics/test.json"]["data"]["accuracy"]
    assert f" {100 * best_test:.2f} " in rows["best-run"]

    # 7. dvc plots diff: curves and confusion matrices of both runs, with their data points
    diff = json.loads(_dvc(project, "plots", "diff", "lr-run", "gru-run", "--json").stdout)["data"]
    for title in ("Training loss", "Validation accuracy", "Test confusion matrix"):
        [plot] = diff[title]
        assert plot["revisions"] == ["lr-run", "gru-run"], title
        points = plot["content"]["data"]["values"]
        assert {p["rev"] for p in points} == {"lr-run", "gru-run"}, title
    confusion = [p for p in diff["Test confusion matrix"][0]["content"]["data"]["values"]]
    assert len(confusion) == 2 * 200
    # classes in label order on both axes, not alphabetical
    encoding = diff["Test confusion matrix"][0]["content"]["spec"]["encoding"]
    assert encoding["x"]["sort"] == encoding["y"]["sort"] == list(CLASS_NAMES)
    # the length histogram has a numeric, binned axis
    [hist] = diff["metrics/length_hist.csv"]
    assert hist["content"]["encoding"]["x"]["type"] == "quantitative"
    assert hist["content"]["encoding"]["x"]["bin"] == {"step": 5}
    # one gradient-flow picture per run
    images = sorted(k for k in diff if k.startswith("dvclive/train/plots/images/"))
    assert images == ["dvclive/train/plots/images/grad_flow.png"]
    assert [p["revisions"] for p in diff[images[0]]] == [["lr-run"], ["gru-run"]]


def test_invalid_param_fails_fast_and_keeps_the_last_good_model(project):
    _run(["git", "checkout", "-q", "--", "params.yaml"], project)
    _dvc(project, "repro")
    model = project / "models" / "model.pt"
    before = hashlib.sha256(model.read_bytes()).hexdigest()
    bad = _dvc(project, "exp", "run", "-S", "model.cell=transformer", check=False)
    assert bad.returncode != 0
    out = bad.stdout + bad.stderr
    assert "model.cell: 'transformer' is invalid; expected one of rnn, gru, lstm" in out
    assert "Running stage 'train'" not in out
    assert hashlib.sha256(model.read_bytes()).hexdigest() == before  # never deleted


def _set_params(project: Path, **values) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    for dotted, value in values.items():
        section, key = dotted.split("__")
        params[section][key] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _start_repro(project: Path) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro"],
        cwd=project,
        env=env,
        start_new_session=True,
        # a test run started in the background (`./test.sh &`, nohup) inherits an ignored SIGINT,
        # and Python then never turns Ctrl-C into KeyboardInterrupt: give dvc the default back
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_until(cond, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, f"finished before {what}:\n{proc.stdout.read()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _training_started(project: Path, since: float):
    """True once this run's train stage is logging: DVC removed the old checkpoint and dvclive
    wrote a fresh loss curve."""
    loss = project / "dvclive" / "train" / "plots" / "metrics" / "loss" / "train.tsv"

    def cond():
        if (project / "models" / "model.pt").exists():
            return False
        try:
            return loss.stat().st_mtime >= since
        except FileNotFoundError:
            return False

    return cond


def test_killed_training_is_rerun_and_resumes_to_the_same_result(project):
    """SIGINT and SIGKILL mid-training leave nothing DVC accepts; with train.resume the rerun
    continues from the last complete epoch and ends with the uninterrupted run's metrics."""
    _run(["git", "checkout", "-q", "--", "params.yaml"], project)
    # patience 0: every epoch runs, so the signals below land while training still runs
    _set_params(
        project, train__epochs=12, train__resume=True, train__log_every=1, train__patience=0
    )
    _dvc(project, "repro")  # the uninterrupted reference
    reference = (project / "metrics" / "test.json").read_text()
    model = project / "models" / "model.pt"
    reference_model = hashlib.sha256(model.read_bytes()).hexdigest()
    state = project / "models" / "train_state.pt"
    assert model.exists() and not state.exists()

    # SIGINT (Ctrl-C) while training runs: enough epochs (a tiny epoch takes ~0.05 s) that the
    # signal lands in training, not after it
    _set_params(
        project,
        train__epochs=400,
        train__resume=True,
        train__log_every=1,
        train__lr=0.0011,
        train__patience=0,
    )
    since = time.time()
    proc = _start_repro(project)
    _wait_until(_training_started(project, since), proc, "training to start")
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=120) != 0, f"dvc repro survived Ctrl-C:\n{proc.stdout.read()}"
    assert not model.exists()
    assert "train" in _dvc(project, "status").stdout

    # SIGKILL after a complete epoch: the saved state survives, the checkpoint does not exist
    _set_params(
        project,
        train__epochs=12,
        train__resume=True,
        train__log_every=1,
        train__lr=0.001,
        train__patience=0,
    )
    since = time.time()
    proc = _start_repro(project)
    # this run's state: the interrupted run above left one of its own (other params) behind
    _wait_until(
        lambda: state.exists() and state.stat().st_mtime >= since, proc, "this run's saved state"
    )
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert not model.exists()
    assert "train" in _dvc(project, "status").stdout

    rerun = _dvc(project, "repro")
    assert "resuming after epoch" in rerun.stdout + rerun.stderr
    # the resumed checkpoint is byte-identical to the reference, so DVC even skips evaluate
    assert hashlib.sha256(model.read_bytes()).hexdigest() == reference_model
    assert _stages_run(rerun) == ["train"]
    assert (project / "metrics" / "test.json").read_text() == reference
    assert not state.exists()
