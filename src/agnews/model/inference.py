"""Running a model over data: logits over a whole shard (training's validation passes and
evaluate's scoring) and the one rule that turns logits into probabilities and labels
(evaluate, predict and serve all use it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from agnews import NUM_CLASSES
from agnews.data.batching import eval_order, make_batch
from agnews.data.shards import Shard, load_shard
from agnews.errors import DataError
from agnews.model.checkpoints import Vocabularies
from agnews.model.classifier import Ensemble, TextClassifier


def predicted_labels(logits: np.ndarray) -> np.ndarray:
    """(N,) int64 labels of (N, C) logits: the argmax of the unrounded logits. The one label
    rule of the project (evaluate, predict, serve); dividing by a temperature never changes it."""
    return np.asarray(logits).argmax(axis=1).astype(np.int64)


def probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(N, C) float64 softmax of (N, C) logits divided by `temperature`."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@torch.inference_mode()
def predict_shard(
    model: TextClassifier | Ensemble, shard: Shard, batch_size: int
) -> tuple[np.ndarray, float]:
    """(predicted labels (N,), mean cross-entropy loss) over the whole shard, in shard order,
    on the model's device, with the model's own input settings."""
    logits, loss = shard_logits(model, shard, batch_size)
    return predicted_labels(logits), loss


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


def load_checked_shard(path: Path, vocabs: Vocabularies) -> Shard:
    """The shard at `path`, prepared with the model's vocabularies (bound by their SHA-256)."""
    shard = load_shard(path)
    try:
        shard.check_vocabularies(vocabs.words, vocabs.ngrams)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    return shard
