"""Per-row test predictions: one CSV per run (the evaluate stage's `metrics/predictions.csv`) or
per linear peer, so that two runs can be compared row by row on the same test texts.

    row,label,predicted,p_world,p_sports,p_business,p_scitech
    0,2,2,0.0123,0.0040,0.9611,0.0226

`row` is the 0-based index of the text in the raw test split (data/raw/test.jsonl, the test
file's order; increasing, and with a gap where prepare dropped a text left empty by
preprocessing, none in AG News), `label` and `predicted` are class ids 0..3 (agnews.
CLASS_NAMES), and the four probabilities are written with 4 decimals.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agnews import NUM_CLASSES
from agnews.atomic import write_text
from agnews.errors import DataError

HEADER = ("row", "label", "predicted", "p_world", "p_sports", "p_business", "p_scitech")


@dataclass(frozen=True)
class Predictions:
    labels: np.ndarray  # (N,) int64: true class per test row, in test order
    predicted: np.ndarray  # (N,) int64
    probs: np.ndarray  # (N, 4) float64, 4 decimals
    rows: np.ndarray | None = None  # (N,) int64 raw test row indices; None = 0..N-1

    def __post_init__(self) -> None:
        if self.rows is None:
            object.__setattr__(self, "rows", np.arange(len(self.labels), dtype=np.int64))

    @property
    def correct(self) -> np.ndarray:
        """(N,) bool: the rows this run got right."""
        return self.predicted == self.labels

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())


def predictions_csv(
    labels: np.ndarray,
    predicted: np.ndarray,
    probs: np.ndarray,
    rows: np.ndarray | None = None,
) -> str:
    """The CSV text for (N,) labels, (N,) predicted classes, (N, 4) probabilities and (N,) raw
    test row indices (default 0..N-1)."""
    n = len(labels)
    rows = np.arange(n) if rows is None else rows
    if len(predicted) != n or probs.shape != (n, NUM_CLASSES) or len(rows) != n:
        raise ValueError(
            f"{n} labels, {len(predicted)} predictions, {len(rows)} rows, probabilities "
            f"{probs.shape}"
        )
    lines = [",".join(HEADER)]
    for i in range(n):
        p = ",".join(f"{x:.4f}" for x in probs[i])
        lines.append(f"{int(rows[i])},{int(labels[i])},{int(predicted[i])},{p}")
    return "\n".join(lines) + "\n"


def write_predictions(
    path: str | Path,
    labels: np.ndarray,
    predicted: np.ndarray,
    probs: np.ndarray,
    rows: np.ndarray | None = None,
) -> None:
    """Write the CSV atomically."""
    write_text(path, predictions_csv(labels, predicted, probs, rows))


def read_predictions(path: str | Path) -> Predictions:
    """Read and check a predictions CSV; any deviation from the format is a DataError naming the
    file and row."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return parse_predictions(text, str(path))


def parse_predictions(text: str, path: str) -> Predictions:
    """The predictions in CSV `text` (read from `path`, named in errors), checked."""
    rows = list(csv.reader(text.splitlines()))
    if not rows or tuple(rows[0]) != HEADER:
        found = ",".join(rows[0]) if rows else "an empty file"
        raise DataError(f"{path}: expected the header {','.join(HEADER)}, found {found}")
    labels, predicted, probs, indices = [], [], [], []
    for i, row in enumerate(rows[1:]):
        where = f"{path}: row {i + 2}"
        if len(row) != len(HEADER):
            raise DataError(f"{where}: expected {len(HEADER)} fields, found {len(row)}")
        try:
            index, label, pred = (int(x) for x in row[:3])
            p = [float(x) for x in row[3:]]
        except ValueError:
            raise DataError(f"{where}: not numbers: {','.join(row)}") from None
        if index < 0 or (indices and index <= indices[-1]):
            after = f"after {indices[-1]}" if indices else ">= 0"
            raise DataError(f"{where}: row index {index}, expected {after} (rows in test order)")
        if not (0 <= label < NUM_CLASSES and 0 <= pred < NUM_CLASSES):
            raise DataError(f"{where}: class ids must be in 0..{NUM_CLASSES - 1}")
        if not all(0.0 <= x <= 1.0 for x in p) or abs(sum(p) - 1.0) > 0.01:
            raise DataError(f"{where}: probabilities must be in [0, 1] and sum to 1")
        indices.append(index)
        labels.append(label)
        predicted.append(pred)
        probs.append(p)
    if not labels:
        raise DataError(f"{path}: no rows")
    return Predictions(
        np.array(labels, dtype=np.int64),
        np.array(predicted, dtype=np.int64),
        np.array(probs, dtype=np.float64).reshape(-1, NUM_CLASSES),
        np.array(indices, dtype=np.int64),
    )


def check_same_rows(a: Predictions, b: Predictions, names: tuple[str, str]) -> None:
    """Two runs are comparable row by row only on the same test rows (same rows, same labels)."""
    same = np.array_equal(a.rows, b.rows) and np.array_equal(a.labels, b.labels)
    if not same:
        raise DataError(
            f"{names[0]} and {names[1]} were not scored on the same test rows "
            f"({len(a.labels)} vs {len(b.labels)} rows, or other labels)"
        )
