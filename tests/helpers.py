"""Constants and helpers shared by the tests."""

from __future__ import annotations

import copy
import shutil
import subprocess
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
    local_dir: Path,
    root: Path,
    min_count: int,
    val_size: float,
    seed: int,
    workers: int = 1,
    ngrams: int = 0,
    ngram_min_count: int = 1,
) -> dict:
    """Run download and prepare into `root` (raw/, out/, m.json, h.csv); return the metrics."""
    from agnews.data.prepare import prepare_dataset
    from agnews.data.raw import download

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
        ngrams=ngrams,
        ngram_min_count=ngram_min_count,
    )


# What a user's runs change in the workspace: copies take these as committed, so the tests pass
# in a workspace where the user has run experiments or edited params.yaml.
RUN_STATE = ("dvc.lock",)
RUN_STATE_DIRS = ("metrics/", "dvclive/")


def committed_bytes(rel: str) -> bytes | None:
    """The committed (HEAD) content of `rel`, or None if HEAD has no such file (or no git)."""
    proc = subprocess.run(
        ["git", "show", f"HEAD:{rel}"], cwd=ROOT, capture_output=True, check=False
    )
    return proc.stdout if proc.returncode == 0 else None


STAGES = ("check", "download", "prepare", "train", "evaluate")


def stages_run(output: str) -> list[str]:
    """The pipeline stages DVC says it ran, in dvc.yaml's order."""
    return [s for s in STAGES if f"Running stage '{s}'" in output]


def copy_project(dst: Path, overrides: dict | None = None) -> Path:
    """The project as a fresh clone of it would be, with this working tree's code: every file
    git tracks or would track (so uncommitted code changes are tested), except the run state
    (dvc.lock, metrics/, dvclive/), taken as committed, params.yaml, whose committed values
    are restored (`committed_params`), and the published ladder runs (reports/runs/), left out:
    they are results on the shipped corpus, which no test project reports on; `overrides`
    ({"section.key": value}) are written into its params.yaml."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        src, out = ROOT / rel, dst / rel
        if rel.startswith("reports/runs/"):
            continue  # the published ladder's runs are results on the shipped corpus, not code
        if rel == "params.yaml":
            import yaml

            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(yaml.safe_dump(committed_params(), sort_keys=False), encoding="utf-8")
        elif rel in RUN_STATE or rel.startswith(RUN_STATE_DIRS):
            blob = committed_bytes(rel)
            if blob is not None:
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(blob)
        elif src.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out)
    if overrides:
        import yaml

        params = yaml.safe_load((dst / "params.yaml").read_text(encoding="utf-8"))
        text = yaml.safe_dump(override(params, overrides), sort_keys=False)
        (dst / "params.yaml").write_text(text, encoding="utf-8")
    return dst


def committed_params() -> dict:
    """The workspace's params.yaml with every value that HEAD also has set back to HEAD's: a
    user's `dvc exp run -S ...` edits do not leak into the tests, while a param a developer has
    just added (not committed yet) is there."""
    from agnews.config import load_yaml

    params = load_yaml((ROOT / "params.yaml").read_text(encoding="utf-8"))
    blob = committed_bytes("params.yaml")
    if blob is not None:
        committed = load_yaml(blob.decode("utf-8"))
        for section, values in params.items():
            for key in values:
                if key in committed.get(section, {}):
                    values[key] = committed[section][key]
    return params


def evaluate_checkpoint(model, data, metrics, confusion, batch_size: int = 64) -> dict:
    """The test metrics of `model` through evaluate's one path (agnews.evaluation.evaluate),
    its JSON and confusion rows at `metrics` and `confusion`, the other outputs beside them;
    the raw split is read from the folder beside `data` named raw (download_and_prepare's)."""
    import dataclasses

    from agnews.config import EvaluateConfig
    from agnews.evaluation.evaluate import EvaluatePaths, evaluate

    paths = EvaluatePaths.in_folder(Path(data).parent / "raw", Path(metrics).parent / "analysis")
    paths = dataclasses.replace(paths, metrics=Path(metrics), confusion=Path(confusion))
    cfg = EvaluateConfig(batch_size=batch_size, calibrate=False, ece_bins=15, error_examples=5)
    return evaluate(model, data, paths, cfg)[0]
