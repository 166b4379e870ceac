"""Scoring: predictions over a shard, accuracy, per-class precision/recall/F1, confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agnews import CLASS_NAMES, NUM_CLASSES
from agnews.atomic import write_json, write_text
from agnews.batching import eval_order, make_batch
from agnews.checkpoints import Vocabularies, load_model
from agnews.errors import DataError
from agnews.models import Ensemble, TextClassifier
from agnews.runtime import pick_device
from agnews.shards import Shard, load_shard


@torch.inference_mode()
def predict_shard(
    model: TextClassifier | Ensemble, shard: Shard, batch_size: int
) -> tuple[np.ndarray, float]:
    """(predicted labels (N,), mean cross-entropy loss) over the whole shard, in shard order,
    on the model's device, with the model's own input settings."""
    logits, loss = shard_logits(model, shard, batch_size)
    return logits.argmax(axis=1).astype(np.int64), loss


@torch.inference_mode()
def shard_logits(
    model: TextClassifier | Ensemble, shard: Shard, batch_size: int
) -> tuple[np.ndarray, float]:
    """(logits (N, C) float32, mean cross-entropy loss) over the whole shard, in shard order
    (an ensemble's logits are the log of its mean probabilities)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = eval_order(shard.lengths, batch_size)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    batch_logits = []  # stays on the device: one transfer at the end, no sync per batch
    for index in order:
        batch = make_batch(shard, index, model.inputs).to(device)
        logits = model.classify(batch).float()  # (B, C)
        loss_sum += nn.functional.cross_entropy(logits, batch.labels, reduction="sum").double()
        batch_logits.append(logits)
    model.train(was_training)
    out = np.empty((len(shard), NUM_CLASSES), dtype=np.float32)
    out[np.concatenate(order)] = torch.cat(batch_logits).cpu().numpy()
    return out, loss_sum.item() / len(shard)


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


def load_checked_shard(path: Path, vocabs: Vocabularies) -> Shard:
    """The shard at `path`, prepared with the model's vocabularies (bound by their SHA-256)."""
    shard = load_shard(path)
    try:
        shard.check_vocabularies(vocabs.words, vocabs.ngrams)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    return shard


def score_test(
    metrics_path: str | Path,
    confusion_path: str | Path,
    test: Shard,
    test_logits: np.ndarray,
    test_loss: float,
) -> dict[str, Any]:
    """Write the test metrics JSON and the confusion-matrix rows of `test_logits` (N, C)."""
    preds = test_logits.argmax(axis=1).astype(np.int64)
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


def evaluate_checkpoint(
    model_path: str | Path,
    data_dir: str | Path,
    metrics_path: str | Path,
    confusion_path: str | Path,
    batch_size: int,
) -> dict[str, Any]:
    """Score the test split once with the selected checkpoint; write metrics JSON and the
    confusion-matrix rows. (The run's params are not repeated here: `dvc exp show` has them.)"""
    model, _, vocabs = load_model(model_path, data_dir, pick_device("auto"))
    test = load_checked_shard(Path(data_dir) / "test.npz", vocabs)
    test_logits, test_loss = shard_logits(model, test, batch_size)
    return score_test(metrics_path, confusion_path, test, test_logits, test_loss)
