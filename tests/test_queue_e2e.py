"""DVC's queue, run the way a user runs it, in a temporary git copy of the project on the
real-data sample: two queued experiments at once, and the ladder (queue, report, publish, re-use
from a fresh clone, a failed run). Split from tests/test_pipeline_e2e.py so that the test
suite's two xdist processes (`--dist loadfile`) share the long DVC tests."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import yaml
from dvc_project import dvc as _dvc
from dvc_project import run as _run
from dvc_project import sample_project

from agnews.config import config_from_dict
from agnews.data.batching import InputSpec
from agnews.model.classifier import TextClassifier

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return sample_project(tmp_path_factory.mktemp("project"))


def test_two_queued_experiments_run_at_once_without_interfering(project):
    _run(["git", "checkout", "-q", "--", "params.yaml"], project)
    for cell in ("gru", "lstm"):
        _dvc(project, "exp", "run", "--queue", "-n", f"q-{cell}", "-S", f"model.cell={cell}")
    _dvc(project, "queue", "start", "-j", "2")
    deadline = time.monotonic() + 480
    while True:
        status = _dvc(project, "queue", "status").stdout
        if "Queued" not in status and "Running" not in status:
            break
        assert time.monotonic() < deadline, status
        time.sleep(2)
    assert status.count("Success") >= 2, status
    shown = json.loads(_dvc(project, "exp", "show", "--json").stdout)
    runs = {}
    for entry in shown:
        for exp in [e for x in entry.get("experiments") or [] for e in x["revs"]]:
            if exp.get("name") in ("q-gru", "q-lstm"):
                runs[exp["name"]] = exp["data"]
    assert set(runs) == {"q-gru", "q-lstm"}
    parameters = {}  # what each cell's model has, at the experiments' own sizes
    for data in runs.values():
        cfg = config_from_dict(data["params"]["params.yaml"]["data"])
        vocab = data["metrics"]["metrics/prepare.json"]["data"]["vocab_size"]
        model = TextClassifier(cfg.model, vocab, InputSpec(0, cfg.train.max_len, None))
        parameters[cfg.model.cell] = sum(p.numel() for p in model.parameters())
    assert parameters["gru"] != parameters["lstm"]
    for name, data in runs.items():
        cell = name.removeprefix("q-")
        assert data["params"]["params.yaml"]["data"]["model"]["cell"] == cell
        # each result came from its own run: an LSTM has more weights than a GRU of its size
        live = data["metrics"]["dvclive/train/metrics.json"]["data"]
        assert live["parameters"] == parameters[cell], name


def _queue_names(project: Path) -> set[str]:
    status = _dvc(project, "queue", "status").stdout
    return {line.split()[1] for line in status.splitlines()[1:] if len(line.split()) >= 4}


def test_ladder_queues_runs_reports_and_reuses(project):
    _run(["git", "checkout", "-q", "--", "params.yaml"], project)
    ladder = [
        sys.executable,
        "-m",
        "agnews.experiments.ladder",
        "--jobs",
        "2",
        "--presets",
        "rnn_mean,gru_cat",
    ]
    complete = project / "reports" / "ladder.md"
    committed_report = complete.read_bytes() if complete.exists() else None

    # a bad --set value is refused before anything is queued
    before = _queue_names(project)
    bad = _run([*ladder, "--set", "train.epochs=abc"], project, check=False)
    assert bad.returncode == 2
    assert "train.epochs: 'abc' is invalid" in bad.stderr
    assert _queue_names(project) == before

    first = _run([*ladder, "--set", "train.epochs=1"], project)
    assert "queued rnn_mean" in first.stdout and "queued gru_cat" in first.stdout
    # one line per finished run
    finished = [line for line in first.stdout.splitlines() if " finished (" in line]
    assert sorted(line.split()[1] for line in finished) == ["gru_cat", "rnn_mean"]
    # a subset never replaces the complete report: it goes to ladder_partial.md
    assert (complete.read_bytes() if complete.exists() else None) == committed_report
    assert "ladder_partial.md" in first.stdout
    report = (project / "reports" / "ladder_partial.md").read_text()
    assert "(partial)" in report and "ladder_analysis" not in report
    rows = {
        line.split("|")[1].strip(" `"): [c.strip() for c in line.split("|")]
        for line in report.splitlines()
        if line.startswith("| `")
    }
    assert set(rows) == set(yaml.safe_load((project / "presets.yaml").read_text()))
    for name, cells in rows.items():
        if name in ("rnn_mean", "gru_cat"):  # ran: val acc, test acc, epochs from --set
            assert cells[6] != "not run" and 0.0 <= float(cells[7]) <= 100.0, name
            assert cells[5] == "1", name
        else:  # not run: shown as missing, never invented
            assert cells[6] == "not run" and cells[7] == "–", name
    assert "360 train / 40 validation / 200 test rows" in report
    assert str(project) not in report  # no machine path
    # two jobs share the cores: each training process got cpus // 2 threads, not all of them
    shown = json.loads(_dvc(project, "exp", "show", "--json").stdout)
    threads = {
        exp["name"]: exp["data"]["metrics"]["dvclive/train/metrics.json"]["data"]["threads"]
        for entry in shown
        for exp in [e for x in entry.get("experiments") or [] for e in x["revs"]]
        if exp.get("name") in ("rnn_mean", "gru_cat")
    }
    assert threads == dict.fromkeys(("rnn_mean", "gru_cat"), max(1, os.cpu_count() // 2))
    assert (project / "reports" / "ladder_partial_plots" / "index.html").is_file()

    assert (project / "reports" / "ladder_partial_val_acc.svg").is_file()
    unpublished = next(line for line in report.splitlines() if line.startswith("**Not published"))
    assert "gru_cat" in unpublished and "rnn_mean" in unpublished

    again = _run([*ladder, "--set", "train.epochs=1"], project)
    assert "re-using experiment rnn_mean" in again.stdout
    assert "queued" not in again.stdout

    # publish the finished runs of the plan: a record each, the same bytes when published again
    quick = [*ladder, "--set", "train.epochs=1", "--report-only", "--publish"]
    runs_dir = project / "reports" / "runs"
    committed = {p.name for p in runs_dir.iterdir()} if runs_dir.is_dir() else set()
    published = _run(quick, project)
    assert "rnn_mean published: reports/runs/rnn_mean-" in published.stdout, published.stdout
    records = {
        p.name: p.read_bytes() for p in sorted(runs_dir.iterdir()) if p.name not in committed
    }
    assert sorted(p.split("-")[0] + p[p.index(".") :] for p in records) == [
        "gru_cat.csv.gz", "gru_cat.json", "rnn_mean.csv.gz", "rnn_mean.json",
    ]  # fmt: skip
    assert sum(map(len, records.values())) < 2 * 20_000  # 200 test rows here
    assert "rnn_mean unchanged" in _run(quick, project).stdout
    assert {
        p.name: p.read_bytes() for p in sorted(runs_dir.iterdir()) if p.name not in committed
    } == records  # the repository's own published runs (other rows) are left alone
    report = (project / "reports" / "ladder_partial.md").read_text()
    unpublished = [line for line in report.splitlines() if line.startswith("**Not published")]
    assert not any("rnn_mean" in line or "gru_cat" in line for line in unpublished)
    _run(["git", "add", "reports/runs"], project)
    _run(["git", "commit", "-qm", "ladder runs"], project)
    # on the new commit (no experiments of it here) the report comes from the records alone
    _run([*ladder, "--set", "train.epochs=1", "--report-only"], project)
    report = (project / "reports" / "ladder_partial.md").read_text()
    assert "Not published" not in report and "| 1 |" in report

    # a fresh clone (no experiments, no DVC cache) runs nothing of what is published, and
    # writes the same report from the records alone
    clone = project.parent / "clone"
    _run(["git", "clone", "-q", str(project), str(clone)], project.parent)
    fresh = _run([*ladder, "--set", "train.epochs=1"], clone)
    assert "re-using published run rnn_mean" in fresh.stdout
    assert "re-using published run gru_cat" in fresh.stdout
    assert "queued" not in fresh.stdout
    assert not {"rnn_mean", "gru_cat"} & _queue_names(clone)
    assert (clone / "reports" / "ladder_partial.md").read_text() == report
    svg = "ladder_partial_val_acc.svg"
    assert (clone / "reports" / svg).read_bytes() == (project / "reports" / svg).read_bytes()

    # a run that fails (its data folder does not exist) makes the ladder exit 1, naming it
    failed = _run(
        [*ladder[:-1], "rnn_max", "--set", "train.epochs=1", "--set", "data.local_dir=nowhere"],
        project,
        check=False,
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "rnn_max FAILED" in failed.stderr
    assert "see `dvc queue logs rnn_max`" in failed.stderr
    assert "1 run(s) failed: rnn_max" in failed.stderr
