"""Published runs: a record's size and round trip, publishing from an experiment's commit,
re-use of a published run, and the report rewritten from records alone, byte for byte."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from helpers import ROOT, SAMPLE_DIR, committed_bytes

from agnews.evaluation.predictions import parse_predictions, predictions_csv
from agnews.experiments.ladder import records
from agnews.experiments.ladder.publish import publish, published_done, rows_digest
from agnews.experiments.ladder.runs import from_experiment
from agnews.experiments.presets import apply_overrides, load_presets, preset_params

PRESETS = load_presets(ROOT / "presets.yaml")
VAL_TSV = "step\tval\n20\t0.8\n40\t0.85\n60\t0.84\n"


def _metrics(code="c0de", rows="r0ws", acc=0.89, n_test=200):
    return {
        "live": {"best_val_acc": 0.9, "best_epoch": 1.0, "train_seconds": 12.5, "device": "cpu",
                 "threads": 1, "cpu_model": "Test CPU", "stopped_epoch": 1.5, "stopped_step": 60,
                 "stop_reason": "patience", "code_hash": code},
        "test": {"accuracy": acc, "macro_f1": acc - 0.01, "n_test": n_test},
        "prepare": {"rows": {"train": 360, "val": 40, "test": n_test}, "vocab_size": 5,
                    "raw_digest": rows},
        "calibration": {"test": {"ece": 0.031}},
    }  # fmt: skip


def _csv(n=200, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 4
    predicted = np.where(rng.random(n) < 0.85, labels, (labels + 1) % 4)
    probs = rng.dirichlet(np.ones(4), size=n)
    return predictions_csv(labels, predicted, probs).encode()


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_published_run_is_small_and_its_predictions_round_trip(tmp_path, params):
    """The committed baseline's real predictions (7,600 rows, 4-decimal probabilities): the
    record and its gzip'd CSV together stay under 100 kB (81 kB measured), the CSV comes back
    byte for byte, and publishing again gives the same bytes."""
    csv = committed_bytes("metrics/predictions.csv")
    assert csv is not None and len(csv) > 250_000  # 280 kB as a plain CSV
    args = ("gru_max", params, _metrics(n_test=7600), csv, VAL_TSV, "a" * 40, "b" * 40)
    record = records.build_record(*args)
    status, path = records.write_record(record, csv, tmp_path / "one")
    assert status == "published" and path.name == f"gru_max-{record['id'][:8]}.json"
    gz = path.parent / record["predictions"]["file"]
    size = path.stat().st_size + gz.stat().st_size
    assert size < 100_000, size
    assert gzip.decompress(gz.read_bytes()) == csv
    [run] = records.load_records(tmp_path / "one")
    back, original = records.record_predictions(run), parse_predictions(csv.decode(), "csv")
    for field in ("rows", "labels", "predicted", "probs"):
        np.testing.assert_array_equal(getattr(back, field), getattr(original, field))
    summary = json.loads(path.read_text())["summary"]
    assert summary["test_rows"] == 7600 and summary["test_ece"] == 0.031
    assert summary["cpu_model"] == "Test CPU" and summary["stop_reason"] == "patience"
    assert json.loads(path.read_text())["val_curve"] == {
        "step": [20, 40, 60],
        "val": [0.8, 0.85, 0.84],
    }

    # idempotent: the same run gives the same bytes, here or in another folder
    before = _files(tmp_path / "one")
    assert (
        records.write_record(records.build_record(*args), csv, tmp_path / "one")[0] == "unchanged"
    )
    assert _files(tmp_path / "one") == before
    records.write_record(records.build_record(*args), csv, tmp_path / "two")
    assert _files(tmp_path / "two") == before
    # another experiment of the same params, code and data: the published one is kept
    rerun = records.build_record(*args[:-1], "c" * 40)
    assert records.write_record(rerun, csv, tmp_path / "one") == ("kept", path)
    assert _files(tmp_path / "one") == before
    # predictions that are not the ones the record names are refused
    gz.write_bytes(gzip.compress(_csv()))
    with pytest.raises(Exception, match="sha256 differs"):
        records.record_predictions(run)


def _git(*args, cwd):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}  # fmt: skip
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_publish_reads_the_experiment_commit(tmp_path, monkeypatch, params, capsys):
    """What `--publish` does with a finished experiment: its predictions and validation curve
    from the experiment's commit, the commit it was based on; a run of older code (no code
    hash recorded) is not published."""
    monkeypatch.chdir(tmp_path)
    _git("init", "-q", cwd=tmp_path)
    _git("commit", "-q", "--allow-empty", "-m", "baseline", cwd=tmp_path)
    baseline = _git("rev-parse", "HEAD", cwd=tmp_path)
    curve = Path(params["paths"]["train_live_dir"]) / "plots" / "metrics" / "acc" / "val.tsv"
    for rel, data in ((params["paths"]["predictions"], _csv()), (curve, VAL_TSV.encode())):
        Path(rel).parent.mkdir(parents=True, exist_ok=True)
        Path(rel).write_bytes(data)
    _git("add", "-A", cwd=tmp_path)
    _git("commit", "-q", "-m", "experiment", cwd=tmp_path)
    exp_rev = _git("rev-parse", "HEAD", cwd=tmp_path)
    files = {
        f"{params['paths']['train_live_dir']}/metrics.json": _metrics()["live"],
        params["paths"]["test_metrics"]: _metrics()["test"],
        params["paths"]["prepare_metrics"]: _metrics()["prepare"],
        params["paths"]["calibration"]: _metrics()["calibration"],
    }
    run = from_experiment("gru_max", {"rev": exp_rev, "params": params, "metrics": files})
    old = from_experiment("rnn_max", {"rev": exp_rev, "params": params, "metrics": {}})
    [path] = publish([run, old], tmp_path / "runs")
    assert "not published: rnn_max recorded no code hash, rows digest" in capsys.readouterr().out
    record = json.loads(path.read_text())
    assert (record["commit"], record["experiment"]) == (baseline, exp_rev)
    assert record["val_curve"]["step"] == [20, 40, 60]
    assert record["metrics"]["live"] == _metrics()["live"] and record["params"] == params
    assert gzip.decompress((path.parent / record["predictions"]["file"]).read_bytes()) == _csv()


def test_a_published_run_is_reused_only_with_the_same_params_code_and_data(tmp_path, params):
    own = preset_params(PRESETS, "gru_max", params)
    seed100 = {**own, "train.seed": 100}
    for name, overrides in (("gru_max", own), ("gru_max-s100", seed100)):
        record = records.build_record(
            name, apply_overrides(params, overrides), _metrics(), _csv(), VAL_TSV, "a", "b"
        )
        records.write_record(record, _csv(), tmp_path)
    published = records.load_records(tmp_path)
    asked = []

    def digest(p):
        asked.append(p["data"]["local_dir"])
        return "r0ws"

    def done(wanted, code="c0de", digest=digest):
        return set(published_done(wanted, params, published, code, digest))

    assert done({"gru_max": own, "gru_max-s100": seed100}) == {"gru_max", "gru_max-s100"}
    assert asked == [params["data"]["local_dir"]]  # the rows' digest, read once per source
    assert done({"gru_max": own}, code="0ther") == set()  # other code
    assert done({"gru_max": own}, digest=lambda p: "0ther") == set()  # other rows
    assert done({"gru_max": own}, digest=lambda p: None) == set()  # rows unknown
    for key, value in (("train.lr", 0.002), ("train.seed", 100), ("data.local_dir", "x")):
        assert done({"gru_max": {**own, key: value}}) == set(), key  # any other param
    assert done({"gru_max-s100": own}) == set()  # another name
    assert done({"gru_max": seed100}) == set()
    asked.clear()
    assert done({"rnn_max": preset_params(PRESETS, "rnn_max", params)}) == set()
    assert asked == []  # nothing published for it: the rows are not even read


def test_the_rows_digest_is_the_one_prepare_records(tmp_path, monkeypatch, params):
    from agnews.data.raw import download
    from agnews.provenance import raw_digest

    download("unused", str(SAMPLE_DIR), tmp_path / "raw")
    local = apply_overrides(params, {"data.local_dir": str(SAMPLE_DIR)})
    assert rows_digest(local) == raw_digest(tmp_path / "raw")
    # a pinned hub revision: read from data/raw when it holds that revision (no download)
    monkeypatch.chdir(tmp_path)
    source = {"source": "hub", "dataset": "org/set", "revision": "abc"}
    (tmp_path / "raw" / "source.json").write_text(json.dumps(source))
    hub = apply_overrides(
        params,
        {"data.local_dir": None, "data.hub_dataset": "org/set", "data.hub_revision": "abc",
         "paths.raw_dir": "raw"},
    )  # fmt: skip
    assert rows_digest(hub) == raw_digest(tmp_path / "raw")


def _ladder(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agnews", "ladder", *args],
        cwd=project, capture_output=True, text=True, check=True,
        env={**os.environ, "DVC_NO_ANALYTICS": "1"},
    )  # fmt: skip


def test_the_report_is_rewritten_byte_for_byte_from_the_records_alone(tmp_path, params):
    """Records of every preset (and two seed repeats) committed in a project; its report twice,
    then a `git clone` of it (no experiments, no DVC cache) writes the very same bytes."""
    from dvc_project import copy_project
    from dvc_project import run as run_cmd

    project = copy_project(tmp_path / "project", {})
    (project / "reports" / "runs").mkdir(parents=True, exist_ok=True)
    wanted = {name: preset_params(PRESETS, name, params) for name in PRESETS}
    own = wanted["wide_deep"]
    wanted |= {f"wide_deep-s{s}": {**own, "train.seed": s} for s in (100, 200)}
    for i, (name, overrides) in enumerate(wanted.items()):
        csv = _csv(seed=i)
        metrics = _metrics(acc=0.85 + i / 1000)
        record = records.build_record(
            name, apply_overrides(params, overrides), metrics, csv, VAL_TSV, "a" * 40, "b" * 40
        )
        records.write_record(record, csv, project / "reports" / "runs")
    run_cmd(["git", "add", "-A"], project)
    run_cmd(["git", "commit", "-qm", "records"], project)

    out = _ladder(project, "--report-only")
    assert "reports/ladder.md" in out.stdout  # every preset with its own params: complete
    first = {p: (project / "reports" / p).read_bytes() for p in ("ladder.md", "ladder_val_acc.svg")}
    _ladder(project, "--report-only")
    assert {p: (project / "reports" / p).read_bytes() for p in first} == first
    svg = first["ladder_val_acc.svg"].decode()  # every run's curve, from its record
    ElementTree.fromstring(svg)  # well-formed
    assert svg.count("<polyline") == len(wanted) and "wide_deep-s200</text>" in svg
    report = first["ladder.md"].decode()
    assert "(partial)" not in report and "Not published" not in report
    assert "on the same 200 test rows" in report and "7,600" not in report
    assert "| `wide_deep` | 3 (53, 100, 200) |" in report
    assert str(tmp_path) not in report and "Test CPU" not in report

    run_cmd(["git", "add", "-A"], project)  # the report committed: HEAD moves on
    run_cmd(["git", "commit", "-qm", "report"], project)
    clone = tmp_path / "clone"
    run_cmd(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    (clone / "reports" / "ladder.md").unlink()
    _ladder(clone, "--report-only")
    assert {p: (clone / "reports" / p).read_bytes() for p in first} == first
