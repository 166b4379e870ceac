"""Constants and helpers shared by the tests."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "tests" / "fixtures" / "ag_news_sample"

TINY = {
    "model.embedding_dim": 16,
    "model.hidden_size": 16,
    "model.head_hidden": 16,
    "model.flatten_dim": 16,
    "train.epochs": 1,
    "train.log_every": 2,
    "prepare.min_count": 1,
    "prepare.num_workers": 1,
}


def override(params: dict, overrides: dict) -> dict:
    out = copy.deepcopy(params)
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        out[section][key] = value
    return out


def download_and_prepare(
    local_dir: Path, root: Path, min_count: int, val_size: float, seed: int, workers: int = 1
) -> dict:
    """Run download and prepare into `root` (raw/, out/, m.json, h.csv); return the metrics."""
    from agnews.data import download
    from agnews.dataset import prepare_dataset

    download("unused", str(local_dir), root / "raw")
    return prepare_dataset(
        root / "raw",
        root / "out",
        root / "m.json",
        root / "h.csv",
        min_count=min_count,
        val_size=val_size,
        seed=seed,
        num_workers=workers,
    )


STAGES = ("download", "prepare", "train", "evaluate")


def stages_run(output: str) -> list[str]:
    """The pipeline stages DVC says it ran, in dvc.yaml's order."""
    return [s for s in STAGES if f"Running stage '{s}'" in output]


def copy_project(dst: Path, overrides: dict) -> Path:
    """Copy the project's files (as a clone would have them: tracked and untracked, not ignored)
    into `dst`, with `overrides` ({"section.key": value}) written into its params.yaml."""
    import subprocess

    import yaml

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
    (dst / "params.yaml").write_text(yaml.safe_dump(override(params, overrides), sort_keys=False))
    return dst
