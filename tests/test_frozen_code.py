"""The training code is frozen while the ladder is published: a change to the prepare/train
stages' files fails here until a committed line acknowledges it (agnews.experiments.frozen_code)."""

from __future__ import annotations

import shutil

import yaml
from helpers import ROOT

from agnews.experiments.frozen_code import FROZEN_FILE, unacknowledged_change
from agnews.provenance import code_files


def test_the_training_code_is_the_frozen_version_or_an_acknowledged_one():
    problem = unacknowledged_change(ROOT)
    assert problem is None, problem


def test_a_stray_edit_fails_until_it_is_acknowledged(tmp_path):
    """The guard itself, on a copy of the tracked files: one byte more in a training file is
    refused, with the hash to acknowledge; acknowledging it passes."""
    for rel in ("dvc.yaml", FROZEN_FILE, *code_files(ROOT)):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    assert unacknowledged_change(tmp_path) is None
    loop = tmp_path / "src" / "agnews" / "model" / "training.py"
    loop.write_text(loop.read_text() + "\n# a stray edit\n")
    problem = unacknowledged_change(tmp_path)
    assert problem is not None and "the training code changed: code_hash" in problem
    new_hash = problem.split("code_hash ")[1].split(",")[0]
    data = yaml.safe_load((tmp_path / FROZEN_FILE).read_text())
    data["acknowledged"] = [*(data.get("acknowledged") or []), {"hash": new_hash, "why": "test"}]
    (tmp_path / FROZEN_FILE).write_text(yaml.safe_dump(data))
    assert unacknowledged_change(tmp_path) is None
