"""Scores of predicted labels: accuracy, per-class precision/recall/F1, confusion matrix, and
the test metrics JSON evaluate writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agnews import CLASS_NAMES, NUM_CLASSES
from agnews.atomic import write_json, write_text
from agnews.data.shards import Shard
from agnews.model.inference import predicted_labels


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, n: int = NUM_CLASSES) -> np.ndarray:
    """(n, n) counts; rows are true classes, columns predictions."""
    return np.bincount(labels * n + preds, minlength=n * n).reshape(n, n)


def classification_metrics(labels: np.ndarray, preds: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class precision/recall/F1/support (0 where undefined)."""
    cm = confusion_matrix(labels, preds)
    tp = np.diag(cm).astype(float)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {
        "accuracy": round(float(tp.sum() / cm.sum()), 6),
        "macro_f1": round(float(f1.mean()), 6),
        "per_class": {
            name: {
                "precision": round(float(precision[c]), 6),
                "recall": round(float(recall[c]), 6),
                "f1": round(float(f1[c]), 6),
                "support": int(support[c]),
            }
            for c, name in enumerate(CLASS_NAMES)
        },
    }


def confusion_csv(labels: np.ndarray, preds: np.ndarray) -> str:
    """One `actual,predicted` row per text, for DVC's `confusion` plot template."""
    rows = ["actual,predicted"]
    rows += [f"{CLASS_NAMES[a]},{CLASS_NAMES[p]}" for a, p in zip(labels, preds, strict=True)]
    return "\n".join(rows) + "\n"


def score_test(
    metrics_path: str | Path,
    confusion_path: str | Path,
    test: Shard,
    test_logits: np.ndarray,
    test_loss: float,
) -> dict[str, Any]:
    """Write the test metrics JSON and the confusion-matrix rows of `test_logits` (N, C)."""
    preds = predicted_labels(test_logits)
    scores = classification_metrics(test.labels, preds)
    metrics = {
        "accuracy": scores["accuracy"],
        "macro_f1": scores["macro_f1"],
        "loss": round(test_loss, 6),
        "n_test": len(test),
        "per_class": scores["per_class"],
    }
    write_json(metrics_path, metrics)
    write_text(confusion_path, confusion_csv(test.labels, preds))
    return metrics
