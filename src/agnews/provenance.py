"""Which code and which data made a run: short digests recorded with its metrics, so a report
never pools rows from different code or data.

`code_hash`: SHA-256 over the Python files that the prepare and train stages depend on in
dvc.yaml (their deps lists are complete: tests/test_dvc_yaml.py checks them), each with its
path: the code that made the data a model learned from and the model. The train stage records
it; runs whose hash is equal ran the same code, whatever commit they were made on (DVC's run
cache restores a train stage only when its deps, these files among them, are unchanged, so a
restored hash is still right). The evaluate stage reruns whenever its own code changes.

`raw_digest`: SHA-256 of the downloaded rows (the raw train and test splits), whatever folder
or hub they came from.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

CODE_STAGES = ("prepare", "train")
DIGEST_CHARS = 12


def project_root() -> Path:
    """The project this package runs from (src/agnews/ -> the folder with dvc.yaml)."""
    return Path(__file__).resolve().parents[2]


def code_files(root: Path) -> list[str]:
    """The .py deps of the prepare and train stages in `root`/dvc.yaml, sorted."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    files = {
        dep
        for name in CODE_STAGES
        for dep in stages[name].get("deps", [])
        if isinstance(dep, str) and dep.endswith(".py")
    }
    return sorted(files)


def code_hash(root: str | Path | None = None) -> str:
    """12 hex digits over the stages' code (see the module docstring); "unknown" when the
    project's dvc.yaml is not there (the package installed elsewhere)."""
    root = Path(root) if root is not None else project_root()
    if not (root / "dvc.yaml").is_file():
        return "unknown"
    digest = hashlib.sha256()
    for rel in code_files(root):
        digest.update(rel.encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return digest.hexdigest()[:DIGEST_CHARS]


def raw_digest(raw_dir: str | Path) -> str:
    """12 hex digits over the raw train and test rows (download's train.jsonl, test.jsonl)."""
    digest = hashlib.sha256()
    for split in ("train", "test"):
        digest.update(split.encode() + b"\0" + (Path(raw_dir) / f"{split}.jsonl").read_bytes())
    return digest.hexdigest()[:DIGEST_CHARS]
