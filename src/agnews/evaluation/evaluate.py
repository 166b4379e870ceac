"""Evaluate's one path: score the test split once with the checkpoint selected on validation,
then the analysis beside the scores (per-row test predictions, the error analysis, per-class
bars, calibration on validation and test; agnews.evaluation.analysis has the formulas), from
one load of the checkpoint. Labels and probabilities come from agnews.model.inference's one
rule, as in predict and serve."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agnews.atomic import write_json, write_text
from agnews.config import EvaluateConfig
from agnews.data.raw import read_raw
from agnews.data.shards import Shard
from agnews.errors import DataError
from agnews.evaluation.analysis import (
    errors_report,
    expected_calibration_error,
    fit_temperature,
    nll,
    per_class_csv,
    reliability,
    reliability_csv,
)
from agnews.evaluation.predictions import write_predictions
from agnews.evaluation.scoring import score_test
from agnews.model.checkpoints import load_model
from agnews.model.inference import load_checked_shard, predicted_labels, probabilities, shard_logits
from agnews.runtime import pick_device


def raw_texts(raw_dir: str | Path, split: str, shard: Shard) -> list[str]:
    """The raw text of each row of the prepared `shard`, by the raw row numbers prepare
    recorded in it (no second tokenization); a shard that does not fit the raw split is an
    error naming it."""
    raw = read_raw(raw_dir, split)
    rows = shard.raw_rows()
    where = f"{Path(raw_dir) / split}.jsonl"
    if len(rows) and rows.max() >= len(raw):
        raise DataError(
            f"{where}: {len(raw)} rows, but the prepared {split} shard names row {rows.max()}: "
            "raw and prepared data come from different runs (dvc repro)"
        )
    labels = np.asarray([raw[i].label for i in rows], dtype=np.int64)
    if not np.array_equal(labels, shard.labels):
        raise DataError(
            f"{where}: the labels of the rows the prepared {split} shard names differ from its "
            "own: raw and prepared data come from different runs (dvc repro)"
        )
    return [raw[i].text for i in rows]


@dataclass(frozen=True)
class EvaluatePaths:
    """Where evaluate writes (params.yaml paths), and the raw split it reads texts from."""

    raw_dir: Path  # download's folder: the test texts (shown in the error analysis)
    metrics: Path  # test accuracy, macro-F1, loss, per-class scores (JSON)
    confusion: Path  # actual,predicted per test row (confusion-matrix plot)
    predictions: Path  # row,label,predicted,p_* per test row
    errors: Path  # the error analysis, Markdown
    per_class: Path  # class,metric,value for the per-class bar chart
    calibration: Path  # ECE before (and after) temperature scaling, metrics JSON
    reliability: Path  # split,bin,confidence,accuracy,count for the reliability diagram

    @classmethod
    def in_folder(cls, raw_dir: str | Path, folder: str | Path) -> EvaluatePaths:
        """Every output under `folder` with a fixed name (tests and benchmarks)."""
        out = Path(folder)
        return cls(
            Path(raw_dir),
            out / "test.json",
            out / "confusion.csv",
            out / "predictions.csv",
            out / "errors.md",
            out / "per_class.csv",
            out / "calibration.json",
            out / "reliability.csv",
        )


def analyse(
    val_logits: np.ndarray,
    val_labels: np.ndarray,
    test_logits: np.ndarray,
    test: Shard,
    texts: list[str],
    per_class: dict[str, Any],
    paths: EvaluatePaths,
    cfg: EvaluateConfig,
) -> dict[str, Any]:
    """Calibration on validation and test (temperature fitted on validation only, when
    cfg.calibrate), then every analysis output; returns the calibration metrics. `texts` are
    the test rows' raw texts (`raw_texts`)."""
    logits = {"val": val_logits, "test": test_logits}
    labels = {"val": val_labels, "test": test.labels}
    bins = cfg.ece_bins
    # numbers only, and no param repeated (evaluate.ece_bins is in `dvc exp show` already)
    calibration: dict[str, Any] = {}
    tables = {}

    def score(suffix: str, temperature: float) -> None:
        """ECE, NLL and the reliability rows of both splits at `temperature`."""
        for split in ("val", "test"):
            probs = probabilities(logits[split], temperature)
            tables[f"{split}{suffix}"] = reliability(probs, labels[split], bins)
            calibration[f"{split}{suffix}"] = {
                "ece": round(expected_calibration_error(probs, labels[split], bins), 6),
                "nll": round(nll(logits[split], labels[split], temperature), 6),
            }

    score("", 1.0)
    temperature = 1.0
    if cfg.calibrate:
        temperature = fit_temperature(val_logits, val_labels)
        calibration["temperature"] = round(temperature, 6)
        score("_calibrated", temperature)
    test_probs = probabilities(test_logits, temperature)  # (N, C)
    rows = test.raw_rows()
    write_predictions(
        paths.predictions, test.labels, predicted_labels(test_logits), test_probs, rows
    )
    report = errors_report(test.labels, test_probs, texts, rows, cfg.error_examples)
    write_text(paths.errors, report)
    write_text(paths.per_class, per_class_csv(per_class))
    write_text(paths.reliability, reliability_csv(tables))
    write_json(paths.calibration, calibration)
    return calibration


def evaluate(
    model_path: str | Path, data_dir: str | Path, paths: EvaluatePaths, cfg: EvaluateConfig
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(test metrics, calibration metrics): score the test split once with the checkpoint
    selected on validation, score validation for calibration, and write every output."""
    model, _, vocabs = load_model(model_path, data_dir, pick_device("auto"))
    test = load_checked_shard(Path(data_dir) / "test.npz", vocabs)
    val = load_checked_shard(Path(data_dir) / "val.npz", vocabs)
    texts = raw_texts(paths.raw_dir, "test", test)  # before anything is written
    test_logits, test_loss = shard_logits(model, test, cfg.batch_size)  # (N, C)
    val_logits, _ = shard_logits(model, val, cfg.batch_size)  # (M, C)
    metrics = score_test(paths.metrics, paths.confusion, test, test_logits, test_loss)
    calibration = analyse(
        val_logits, val.labels, test_logits, test, texts, metrics["per_class"], paths, cfg
    )
    return metrics, calibration
