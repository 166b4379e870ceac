"""Evaluate's full run: the test scores (agnews.evaluation) and the analysis beside them:
per-row test predictions, the error analysis, per-class bars, calibration on validation and
test (agnews.analysis has the formulas), from one load of the checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agnews.analysis import (
    errors_report,
    expected_calibration_error,
    fit_temperature,
    nll,
    per_class_csv,
    reliability,
    reliability_csv,
    softmax,
)
from agnews.atomic import write_json, write_text
from agnews.checkpoints import load_model
from agnews.config import EvaluateConfig
from agnews.errors import DataError
from agnews.evaluation import load_checked_shard, score_test, shard_logits
from agnews.predictions import write_predictions
from agnews.raw import read_raw
from agnews.runtime import pick_device
from agnews.shards import Shard
from agnews.text import tokenize_all


def raw_rows(raw_dir: str | Path, split: str, shard: Shard) -> tuple[np.ndarray, list[str]]:
    """(0-based index in the raw split (N,), raw text) of each row of the prepared `shard`:
    prepare keeps the raw rows in order, less those empty after preprocessing."""
    raw = read_raw(raw_dir, split)
    tokens = tokenize_all([e.text for e in raw], desc=f"tokenize {split}")
    keep = np.asarray([i for i, t in enumerate(tokens) if t], dtype=np.int64)
    labels = np.asarray([raw[i].label for i in keep], dtype=np.int64)
    if len(keep) != len(shard) or not np.array_equal(labels, shard.labels):
        raise DataError(
            f"{Path(raw_dir) / split}.jsonl: {len(keep)} non-empty rows whose labels do not "
            f"match the {len(shard)} rows of the prepared {split} shard: raw and prepared data "
            "come from different runs (dvc repro)"
        )
    return keep, [raw[i].text for i in keep]


@dataclass(frozen=True)
class AnalysisPaths:
    """Where evaluate writes its analysis (params.yaml paths), and the raw split it reads."""

    raw_dir: Path  # download's folder: the test texts and their row numbers
    predictions: Path  # row,label,predicted,p_* per test row
    errors: Path  # the error analysis, Markdown
    per_class: Path  # class,metric,value for the per-class bar chart
    calibration: Path  # ECE before (and after) temperature scaling, metrics JSON
    reliability: Path  # split,bin,confidence,accuracy,count for the reliability diagram


def analyse(
    val_logits: np.ndarray,
    val_labels: np.ndarray,
    test_logits: np.ndarray,
    test: Shard,
    rows: np.ndarray,
    texts: list[str],
    per_class: dict[str, Any],
    paths: AnalysisPaths,
    cfg: EvaluateConfig,
) -> dict[str, Any]:
    """Calibration on validation and test (temperature fitted on validation only, when
    cfg.calibrate), then every analysis output; returns the calibration metrics. `rows` and
    `texts` are the test rows' raw index and text (`raw_rows`)."""
    logits = {"val": val_logits, "test": test_logits}
    labels = {"val": val_labels, "test": test.labels}
    bins = cfg.ece_bins
    # numbers only, and no param repeated (evaluate.ece_bins is in `dvc exp show` already)
    calibration: dict[str, Any] = {}
    tables = {}

    def score(suffix: str, temperature: float) -> None:
        """ECE, NLL and the reliability rows of both splits at `temperature`."""
        for split in ("val", "test"):
            probs = softmax(logits[split], temperature)
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
    test_probs = softmax(test_logits, temperature)  # (N, C)
    write_predictions(paths.predictions, test.labels, test_probs.argmax(axis=1), test_probs, rows)
    report = errors_report(test.labels, test_probs, texts, rows, cfg.error_examples)
    write_text(paths.errors, report)
    write_text(paths.per_class, per_class_csv(per_class))
    write_text(paths.reliability, reliability_csv(tables))
    write_json(paths.calibration, calibration)
    return calibration


def evaluate_with_analysis(
    model_path: str | Path,
    data_dir: str | Path,
    metrics_path: str | Path,
    confusion_path: str | Path,
    paths: AnalysisPaths,
    cfg: EvaluateConfig,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(test metrics, calibration metrics): score the test split once with the checkpoint
    selected on validation, score validation for calibration, and write every output."""
    model, _, vocabs = load_model(model_path, data_dir, pick_device("auto"))
    test = load_checked_shard(Path(data_dir) / "test.npz", vocabs)
    val = load_checked_shard(Path(data_dir) / "val.npz", vocabs)
    rows, texts = raw_rows(paths.raw_dir, "test", test)  # before anything is written
    test_logits, test_loss = shard_logits(model, test, cfg.batch_size)  # (N, C)
    val_logits, _ = shard_logits(model, val, cfg.batch_size)  # (M, C)
    metrics = score_test(metrics_path, confusion_path, test, test_logits, test_loss)
    calibration = analyse(
        val_logits, val.labels, test_logits, test, rows, texts, metrics["per_class"], paths, cfg
    )
    return metrics, calibration
