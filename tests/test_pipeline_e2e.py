"""The real DVC pipeline, run the way a user runs it, in a temporary git copy of the project on
the real-data sample: dvc repro, a no-op repro, a train-only change, dvc exp run -S, a preset,
dvc exp show and dvc plots diff."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, TINY

pytestmark = pytest.mark.e2e


def _run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def _dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "dvc", *args], cwd, check)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A git repo holding the project's files (as a clone would), pointed at the sample."""
    dst = tmp_path_factory.mktemp("project")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    params = yaml.safe_load((dst / "params.yaml").read_text())
    for dotted, value in {**TINY, "data.local_dir": "tests/fixtures/ag_news_sample"}.items():
        section, key = dotted.split(".")
        params[section][key] = value
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q", "-b", "main"], dst)
    _run(["git", "add", "-A"], dst)
    _run(["git", "commit", "-qm", "project copy"], dst)
    return dst


def _stages_run(proc: subprocess.CompletedProcess) -> list[str]:
    out = proc.stdout + proc.stderr
    return [
        s for s in ("download", "prepare", "train", "evaluate") if f"Running stage '{s}'" in out
    ]


def test_repro_then_experiments(project):
    # 1. the whole pipeline
    first = _dvc(project, "repro")
    assert _stages_run(first) == ["download", "prepare", "train", "evaluate"]
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
    assert _stages_run(lr) == ["train", "evaluate"]

    # 4. the example: a GRU
    gru = _dvc(project, "exp", "run", "-n", "gru-run", "-S", "model.cell=gru")
    assert _stages_run(gru) == ["train", "evaluate"]

    # 5. a preset through its -S overrides (null, false, "+"-joined pooling all round-trip)
    args = _run([sys.executable, "-m", "agnews.presets", "bilstm2_flatten_mean_max"], project)
    preset = _dvc(
        project, "exp", "run", "-n", "best-run", *args.stdout.split(), "-S", "train.epochs=2"
    )
    assert _stages_run(preset) == ["train", "evaluate"]

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

    # 7. dvc plots diff: curves and confusion matrices of both runs, with their data points
    diff = json.loads(_dvc(project, "plots", "diff", "lr-run", "gru-run", "--json").stdout)["data"]
    for title in ("Training loss", "Validation accuracy", "Test confusion matrix"):
        [plot] = diff[title]
        assert plot["revisions"] == ["lr-run", "gru-run"], title
        points = plot["content"]["data"]["values"]
        assert {p["rev"] for p in points} == {"lr-run", "gru-run"}, title
    confusion = [p for p in diff["Test confusion matrix"][0]["content"]["data"]["values"]]
    assert len(confusion) == 2 * 200
    images = [k for k in diff if k.startswith("dvclive/train/plots/images/grad_flow/")]
    assert images, "gradient-flow images are missing from the plots"


def test_invalid_param_fails_fast_and_lists_choices(project):
    bad = _dvc(project, "exp", "run", "-S", "model.cell=transformer", check=False)
    assert bad.returncode != 0
    assert "model.cell: 'transformer' is invalid; expected one of rnn, gru, lstm" in (
        bad.stdout + bad.stderr
    )
