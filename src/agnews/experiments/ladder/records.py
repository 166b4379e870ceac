"""Published runs: a finished ladder run as a small git-tracked record in reports/runs/.

    reports/runs/<name>-<id8>.json      params, metrics, versions, curve, provenance
    reports/runs/<name>-<id8>.csv.gz    its per-row test predictions (evaluate's CSV, gzip'd)

A record's identity (`id`) is a digest of everything that decides its numbers: all its params,
the code hash of the stages that made it (`code_hash`, agnews.provenance) and the digest of
its rows (`raw_digest`). The JSON holds the run's whole metrics files (train's dvclive metrics,
test, prepare, calibration: whatever keys the run recorded, where it ran included), a summary
of them, its validation curve (`step`, `val` of dvclive's acc/val.tsv) and the commits: the
experiment's own and the commit it was based on. Nothing in it depends on the machine that
publishes it or when: publishing the same run again gives the same bytes (the JSON with a fixed
key order; the gzip without a name or time, and left alone when it already holds the same CSV).

A run of the same identity published before is kept: the ladder of record is what main holds.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from agnews.atomic import atomic_path, write_text
from agnews.errors import DataError
from agnews.evaluation.predictions import Predictions, parse_predictions

RUNS_DIR = Path("reports") / "runs"
FORMAT = 1
# metric kinds a record carries, by the name the run's own params give each file (runs.run_file)
KINDS = ("live", "test", "prepare", "calibration")
# train's dvclive keys that say where and how a run trained, copied into the summary if present
WHERE_KEYS = ("device", "threads", "cpu_model", "cpu_capability", "bf16_native")


def identity(params: dict[str, Any], code: str | None, rows: str | None) -> str:
    """12 hex digits over all the params, the code hash and the rows' digest."""
    blob = json.dumps(
        {"params": params, "code_hash": code, "raw_digest": rows},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def stem(name: str, run_id: str) -> str:
    """The record's file name without suffix, e.g. "gru_max-1a2b3c4d"."""
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}-{run_id[:8]}"


def curve_points(tsv: str) -> dict[str, list]:
    """dvclive's `step<TAB>val` TSV as {"step": [...], "val": [...]}."""
    lines = [line.split("\t") for line in tsv.splitlines() if line.strip()]
    if not lines:
        return {"step": [], "val": []}
    body = lines[1:] if lines[0][0] == "step" else lines
    return {"step": [int(r[0]) for r in body], "val": [float(r[1]) for r in body]}


def summary(metrics: dict[str, dict], rows: int) -> dict[str, Any]:
    """The numbers a reader looks for first, taken from the run's own metrics."""
    live, test = metrics.get("live") or {}, metrics.get("test") or {}
    test_cal = (metrics.get("calibration") or {}).get("test") or {}
    out = {
        "best_val_acc": live.get("best_val_acc"),
        "best_epoch": live.get("best_epoch"),
        "test_acc": test.get("accuracy"),
        "test_macro_f1": test.get("macro_f1"),
        "test_ece": test_cal.get("ece"),
        "test_rows": rows,
        "stopped_epoch": live.get("stopped_epoch"),
        "stop_reason": live.get("stop_reason"),
        "train_seconds": live.get("train_seconds"),
    }
    return out | {k: live[k] for k in WHERE_KEYS if k in live}


def build_record(
    name: str,
    params: dict[str, Any],
    metrics: dict[str, dict],
    predictions_csv: bytes,
    val_tsv: str,
    commit: str,
    experiment: str,
) -> dict[str, Any]:
    """The record of a finished run (`metrics` by kind, see KINDS)."""
    code = (metrics.get("live") or {}).get("code_hash")
    rows_digest = (metrics.get("prepare") or {}).get("raw_digest")
    run_id = identity(params, code, rows_digest)
    text = predictions_csv.decode("utf-8")
    n = len(parse_predictions(text, f"{name}: predictions").labels)  # checked before publishing
    return {
        "format": FORMAT,
        "name": name,
        "id": run_id,
        "code_hash": code,
        "raw_digest": rows_digest,
        "commit": commit,
        "experiment": experiment,
        "summary": summary(metrics, n),
        "params": params,
        "metrics": {k: metrics.get(k) or {} for k in KINDS},
        "val_curve": curve_points(val_tsv),
        "predictions": {
            "file": f"{stem(name, run_id)}.csv.gz",
            "rows": n,
            "sha256": hashlib.sha256(predictions_csv).hexdigest(),
        },
    }


def record_text(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=1, ensure_ascii=False) + "\n"


def gzip_bytes(data: bytes) -> bytes:
    """gzip without a file name or time: the same input gives the same bytes."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def write_gzip(path: Path, data: bytes) -> None:
    """Write `data` gzip'd, unless `path` already holds exactly `data` (its bytes are kept,
    whatever zlib made them)."""
    try:
        if gzip.decompress(path.read_bytes()) == data:
            return
    except (OSError, EOFError, gzip.BadGzipFile):
        pass
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip_bytes(data))


def write_record(
    record: dict[str, Any], predictions_csv: bytes, out_dir: Path = RUNS_DIR
) -> tuple[str, Path]:
    """Write the record and its predictions into `out_dir`; return its JSON's path and
    "published", "unchanged" or "kept" (a record of the same name and identity from another
    experiment is there: left as it is)."""
    out_dir = Path(out_dir)
    path = out_dir / f"{stem(record['name'], record['id'])}.json"
    text = record_text(record)
    status = "published"
    if path.is_file():
        old = path.read_text(encoding="utf-8")
        if old == text:
            status = "unchanged"
        elif json.loads(old).get("experiment") != record["experiment"]:
            return "kept", path
    write_gzip(out_dir / record["predictions"]["file"], predictions_csv)
    if status == "published":
        write_text(path, text)
    return status, path


def as_run(record: dict[str, Any], path: Path) -> dict[str, Any]:
    """A record as the report's runs are (agnews.experiments.ladder.runs)."""
    return {
        "name": record["name"],
        "params": record["params"],
        "metrics": record["metrics"],
        "source": "record",
        "rev": record.get("experiment"),
        "record": path,
        "predictions": record["predictions"],
        "val_curve": record.get("val_curve") or {"step": [], "val": []},
    }


def load_records(folder: Path = RUNS_DIR) -> list[dict[str, Any]]:
    """Every record of `folder` as a run, sorted by file name; a malformed one is an error."""
    runs = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: not a run record ({exc})") from None
        missing = {"format", "name", "id", "params", "metrics", "predictions"} - set(record)
        if missing or record["format"] != FORMAT:
            what = f"missing {', '.join(sorted(missing))}" if missing else "another format"
            raise DataError(f"{path}: not a run record of format {FORMAT} ({what})")
        runs.append(as_run(record, path))
    return runs


def record_predictions(run: dict[str, Any]) -> Predictions:
    """A record's per-row test predictions, checked against the digest it recorded."""
    path, entry = Path(run["record"]), run["predictions"]
    gz = path.parent / entry["file"]
    try:
        data = gzip.decompress(gz.read_bytes())
    except FileNotFoundError:
        raise DataError(f"{gz}: missing (the predictions of {path.name})") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{gz}: not gzip ({exc})") from None
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise DataError(f"{gz}: not the predictions {path.name} recorded (sha256 differs)")
    return parse_predictions(data.decode("utf-8"), str(gz))


def read_predictions_file(path: Path) -> Predictions:
    """A predictions CSV, gzip'd (`.gz`) or not (the peers' files)."""
    path = Path(path)
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return parse_predictions(data.decode("utf-8"), str(path))
