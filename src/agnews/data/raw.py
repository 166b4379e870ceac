"""Raw AG News splits: read them from the HuggingFace hub or local CSVs, check them, store them.

Every split becomes a list of `Example(label, text)` with labels 0..3 and, as HuggingFace builds
it, `text = title + " " + description`. The raw splits are stored as JSON lines, one object
`{"label": int, "text": str}` per row.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agnews import CLASS_NAMES, NUM_CLASSES
from agnews.atomic import atomic_dir
from agnews.errors import DataError

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Example:
    label: int  # 0..3: World, Sports, Business, Sci/Tech
    text: str


# --- local CSV files in the original release format


def resolve_local_dir(local_dir: str | Path, cwd: Path | None = None) -> Path:
    """`data.local_dir` as a folder: absolute, or relative to the project root (the stage's
    working directory). An experiment run with `--queue` or `--temp` runs in a temporary copy of
    the project under `<project>/.dvc/tmp/exps/`, which has only the files git tracks; a
    relative folder that git ignores (data/external/..., say; the shipped corpus/ is tracked) is
    then found in the project it was started from."""
    path = Path(local_dir)
    if path.is_absolute():
        return path
    cwd = (cwd or Path.cwd()).resolve()
    here = cwd / path
    if here.exists():
        return here
    parts = cwd.parts
    for i in range(len(parts) - 3):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            started_from = Path(*parts[:i]) / path
            if started_from.exists():
                return started_from
            break
    return here


def find_split_file(local_dir: Path, split: str) -> Path:
    """The one `<split>*.csv` or `<split>*.csv.gz` file in `local_dir` (`train.csv`,
    `train_partial.csv.gz`, ...); none or several is an error, never a silent pick."""
    if not local_dir.is_dir():
        raise DataError(
            f"data.local_dir: {local_dir} is not a directory (put AG News CSV files there, or set "
            "data.local_dir=null to download from the HuggingFace hub)"
        )
    found = sorted(
        p
        for p in local_dir.iterdir()
        if p.name.startswith(split) and p.name.endswith((".csv", ".csv.gz")) and p.is_file()
    )
    if len(found) != 1:
        what = (
            "no file" if not found else f"{len(found)} files ({', '.join(p.name for p in found)})"
        )
        raise DataError(
            f"{local_dir}: expected exactly one {split}*.csv or {split}*.csv.gz file, found {what}"
        )
    return found[0]


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"{path}: not a valid gzip file (truncated or corrupt): {exc}"
            ) from None
    return raw


def read_csv_split(path: Path) -> list[Example]:
    """Parse one original-format CSV (class 1..4, title, description); errors name file and row."""
    raw = _read_bytes(path)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(
            f"{path}: UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        row = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}: row {row}: not valid UTF-8 ({exc.reason})") from None
    text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark (spreadsheet exports)
    if "\0" in text:
        row = text[: text.index("\0")].count("\n") + 1
        raise DataError(f"{path}: row {row}: NUL byte; this is not a CSV text file")
    examples = []
    reader = csv.reader(io.StringIO(text, newline=""))
    row = 0
    try:
        for fields in reader:
            row = reader.line_num
            if len(fields) != 3:
                raise DataError(
                    f"{path}: row {row}: expected 3 columns (class, title, description), "
                    f"found {len(fields)}"
                )
            label, title, description = fields
            if label.strip() not in {"1", "2", "3", "4"}:
                raise DataError(f"{path}: row {row}: class {label!r} is not one of 1, 2, 3, 4")
            examples.append(Example(int(label) - 1, f"{title} {description}"))
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise DataError(
                f"{path}: row {row + 1}: a field longer than {csv.field_size_limit():,} "
                "characters (an unclosed quote?); AG News fields are under 1,000"
            ) from None
        raise DataError(f"{path}: row {reader.line_num}: malformed CSV: {exc}") from None
    return examples


def load_local(local_dir: str | Path) -> tuple[dict[str, list[Example]], dict[str, Any]]:
    """Read train and test from `local_dir`; also return a description with file checksums."""
    folder = resolve_local_dir(local_dir)
    splits, files = {}, {}
    for split in SPLITS:
        path = find_split_file(folder, split)
        splits[split] = read_csv_split(path)
        check_split(splits[split], str(path))
        # named as params.yaml names them: no machine-specific path in the outputs
        files[split] = {"file": path.name, "md5": hashlib.md5(path.read_bytes()).hexdigest()}
    return splits, {"source": "local", "local_dir": str(local_dir), "files": files}


# --- HuggingFace hub


def load_hub(
    name: str, revision: str | None = None
) -> tuple[dict[str, list[Example]], dict[str, Any]]:
    """Load `name` (e.g. fancyzhx/ag_news, or a local folder) through `datasets.load_dataset`, at
    git `revision` of the hub repository (None: the newest)."""
    import datasets  # heavy import, only on this path

    try:
        dataset = datasets.load_dataset(name, revision=revision)
    except Exception as exc:  # network, auth, missing dataset: all surface here
        raise DataError(
            f"data.hub_dataset: cannot load {name!r} from the HuggingFace hub: {exc}. "
            "Offline? Point data.local_dir at AG News CSV files instead."
        ) from None
    splits = {}
    for split in SPLITS:
        if split not in dataset:
            raise DataError(f"{name}: no {split!r} split (found {', '.join(dataset)})")
        part = dataset[split]
        missing = {"text", "label"} - set(part.column_names)
        if missing:
            raise DataError(f"{name}/{split}: missing column(s) {', '.join(sorted(missing))}")
        examples = []
        for row, (label, text) in enumerate(zip(part["label"], part["text"], strict=True)):
            if not isinstance(label, int) or not 0 <= label < NUM_CLASSES:
                raise DataError(f"{name}/{split}: row {row}: label {label!r} is not in 0..3")
            if not isinstance(text, str):
                raise DataError(f"{name}/{split}: row {row}: text is not a string")
            examples.append(Example(label, text))
        check_split(examples, f"{name}/{split}")
        splits[split] = examples
    fingerprints = {s: dataset[s]._fingerprint for s in SPLITS}
    source = {"source": "hub", "dataset": name, "revision": revision}
    return splits, {**source, "fingerprints": fingerprints}


# --- checks and storage


def check_split(examples: Sequence[Example], where: str) -> None:
    """A split must be non-empty and hold every class."""
    if not examples:
        raise DataError(f"{where}: the split is empty")
    present = {e.label for e in examples}
    absent = [CLASS_NAMES[c] for c in range(NUM_CLASSES) if c not in present]
    if absent:
        raise DataError(f"{where}: no rows of class(es) {', '.join(absent)}")


def write_raw(out_dir: str | Path, splits: dict[str, list[Example]], source: dict) -> None:
    """Store the splits as JSON lines plus source.json, replacing `out_dir` atomically."""
    with atomic_dir(out_dir) as tmp:
        counts = {}
        for split, examples in splits.items():
            with open(tmp / f"{split}.jsonl", "w", encoding="utf-8") as f:
                for e in examples:
                    f.write(json.dumps({"label": e.label, "text": e.text}, ensure_ascii=False))
                    f.write("\n")
            counts[split] = {
                "rows": len(examples),
                "per_class": [sum(e.label == c for e in examples) for c in range(NUM_CLASSES)],
            }
        (tmp / "source.json").write_text(
            json.dumps({**source, "splits": counts}, indent=2) + "\n", encoding="utf-8"
        )


def read_raw(raw_dir: str | Path, split: str) -> list[Example]:
    path = Path(raw_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: missing; run the download stage first")
    examples = []
    with open(path, encoding="utf-8") as f:
        for row, line in enumerate(f, start=1):
            try:
                obj = json.loads(line)
                examples.append(Example(int(obj["label"]), str(obj["text"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{path}: row {row}: malformed line: {exc}") from None
    return examples


def download(
    hub_dataset: str, local_dir: str | None, out_dir: str | Path, hub_revision: str | None = None
) -> dict[str, Any]:
    """Fetch (hub, at `hub_revision`) or read (local) both splits, check them and store them in
    `out_dir`."""
    if local_dir is None:
        splits, source = load_hub(hub_dataset, hub_revision)
    else:
        splits, source = load_local(local_dir)
    write_raw(out_dir, splits, source)
    return {split: len(examples) for split, examples in splits.items()}
