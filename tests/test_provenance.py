"""Code and data digests recorded with each run (agnews.provenance)."""

import shutil

from helpers import ROOT, SAMPLE_DIR

from agnews.data.raw import download
from agnews.provenance import code_files, code_hash, raw_digest


def _copy_project(tmp_path):
    root = tmp_path / "project"
    shutil.copytree(ROOT / "src", root / "src")
    shutil.copytree(ROOT / "stages", root / "stages")
    shutil.copy(ROOT / "dvc.yaml", root / "dvc.yaml")
    return root


def test_the_code_hash_covers_the_training_code_and_nothing_else(tmp_path):
    files = code_files(ROOT)
    assert {"stages/train.py", "stages/prepare.py", "src/agnews/model/training.py"} <= set(files)
    assert (
        "src/agnews/model/classifier.py" in files
        and "src/agnews/experiments/ladder/report.py" not in files
    )
    root = _copy_project(tmp_path)
    before = code_hash(root)
    assert len(before) == 12 and before == code_hash(ROOT)
    (root / "src/agnews/experiments/ladder/report.py").write_text(
        "# a report change\n"
    )  # not training code
    assert code_hash(root) == before
    models = root / "src/agnews/model/classifier.py"
    models.write_text(models.read_text() + "\n# one more line\n")
    assert code_hash(root) != before
    assert code_hash(tmp_path / "elsewhere") == "unknown"


def test_the_raw_digest_is_the_rows(tmp_path):
    download("unused", str(SAMPLE_DIR), tmp_path / "a")
    download("unused", str(SAMPLE_DIR), tmp_path / "b")
    assert raw_digest(tmp_path / "a") == raw_digest(tmp_path / "b")
    test = tmp_path / "b" / "test.jsonl"
    test.write_text(test.read_text().replace('"label": 0', '"label": 1', 1))
    assert raw_digest(tmp_path / "a") != raw_digest(tmp_path / "b")


def test_a_run_records_its_code_hash_and_prepare_its_rows(trained_model, prepared_dir):
    import json

    live = json.loads((trained_model.parent / "live" / "metrics.json").read_text())
    assert live["code_hash"] == code_hash()
    metrics = json.loads((prepared_dir.parent / "m.json").read_text())
    assert metrics["raw_digest"] == raw_digest(prepared_dir.parent / "raw")
