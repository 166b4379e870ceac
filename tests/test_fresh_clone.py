"""A fresh clone rebuilds the published data exactly: `git clone` of this repository's HEAD, then
`dvc repro prepare` on the AG News rows that ship in corpus/, with nothing else (no network, no
cache, no data/ folder). Every output of check, download and prepare must have the hash that the
committed dvc.lock records, and the tracked prepare metrics must come out byte-identical.

Training and evaluation are the README's to check by hand (`./run.sh`, then `git diff
metrics/test.json`): they take minutes and are exact only on a CPU like the publishing one."""

from __future__ import annotations

import pytest
import yaml
from dvc_project import dvc, run
from helpers import ROOT, committed_bytes, stages_run

pytestmark = pytest.mark.e2e

DATA_STAGES = ["check", "download", "prepare"]


def test_fresh_clone_rebuilds_the_committed_data_hashes(tmp_path):
    committed = committed_bytes("dvc.lock")
    assert committed is not None, "HEAD has no dvc.lock"
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(ROOT), str(clone)], tmp_path)
    assert not (clone / "data").exists()

    proc = dvc(clone, "repro", "prepare")
    assert stages_run(proc.stdout + proc.stderr) == DATA_STAGES

    want = yaml.safe_load(committed)["stages"]
    got = yaml.safe_load((clone / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    for stage in DATA_STAGES:
        for field in ("outs", "deps", "params"):
            assert got[stage].get(field) == want[stage].get(field), (
                f"{stage} {field} differ from the committed dvc.lock: a fresh clone does not "
                "rebuild the published data (rerun `dvc repro` and commit dvc.lock if the change "
                "is intended)"
            )
    # the tracked outputs (metrics/prepare.json, metrics/length_hist.csv) and dvc.lock itself
    status = run(["git", "status", "--porcelain"], clone).stdout
    assert status == "", status
